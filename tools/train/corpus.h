// The synthetic chat corpus of the demo model: dialogues in the chat
// template "User: {message}\n\nAssistant: {reply}\n\n" (a space after
// "Assistant:", each reply ends at the blank line), exercising what the
// server promises: facts from a table (country capitals) and multi-turn
// memory ("My name is X." ... "What is my name?" -> "Your name is X.") with
// filler turns in between. Deterministic from a seed; the project's own
// data, nothing downloaded.
#ifndef RWKV_TOOLS_TRAIN_CORPUS_H_
#define RWKV_TOOLS_TRAIN_CORPUS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rwkv::train {

struct CountryFact {
  std::string country;
  std::string capital;
};

// The fact table (country -> capital).
const std::vector<CountryFact>& CapitalFacts();
// Names used in training dialogues, and names never used in training
// (disjoint lists), for measuring memory on seen and unseen names.
const std::vector<std::string>& TrainingNames();
const std::vector<std::string>& HeldOutNames();

// One user turn in the template, up to and including "Assistant:" (the text
// a chat front end feeds before generating a reply).
std::string UserTurn(std::string message);
// A full exchange: UserTurn(message) + " " + reply + "\n\n".
std::string Exchange(std::string message, std::string reply);

struct CorpusOptions {
  uint64_t seed = 1;
  int num_dialogues = 20000;
  // Percent of dialogues written in the " Arr!" style (WithArrReplies). The
  // choice uses its own random stream, so the dialogues are the same as with
  // 0. A model trained on a mix learns to keep a dialogue's style from turn
  // to turn in its state, which gives state tuning (tools/train/
  // state_tuner.h) a style to select.
  int arr_percent = 0;
};

// Dialogues, each a complete multi-turn conversation in the template.
std::vector<std::string> GenerateDialogues(const CorpusOptions& options);

// The dialogue with every assistant reply ending in " Arr!" (before the
// reply's closing blank line).
std::string WithArrReplies(const std::string& dialogue);

// One JSON object per line: {"text": "..."}.
std::string DialoguesToJsonl(const std::vector<std::string>& dialogues);

}  // namespace rwkv::train

#endif  // RWKV_TOOLS_TRAIN_CORPUS_H_
