#include "tools/train/chat_eval.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tools/train/corpus.h"

namespace rwkv::train {

absl::StatusOr<std::string> ChatTurn(engine::Engine& engine,
                                     engine::State& state, std::string message,
                                     int max_bytes) {
  const std::string prompt = UserTurn(message);
  std::vector<int32_t> toks(prompt.begin(), prompt.end());
  for (int32_t& t : toks) t = static_cast<uint8_t>(t);
  absl::StatusOr<engine::Logits> logits = engine.Forward(toks, state);
  if (!logits.ok()) return logits.status();
  std::string reply;
  while (static_cast<int>(reply.size()) < max_bytes) {
    const int32_t tok = logits->ArgMax(0);
    reply.push_back(static_cast<char>(tok));
    const int32_t one[] = {tok};
    logits = engine.Forward(one, state);
    if (!logits.ok()) return logits.status();
    if (absl::EndsWith(reply, "\n\n")) {
      reply.resize(reply.size() - 2);
      break;
    }
  }
  if (absl::StartsWith(reply, " ")) reply.erase(0, 1);
  return reply;
}

absl::StatusOr<EvalResult> EvalNameMemory(
    engine::Engine& engine, const std::vector<std::string>& names) {
  EvalResult r;
  for (std::string name : names) {
    engine::State state = engine.NewState();
    absl::StatusOr<std::string> a =
        ChatTurn(engine, state, absl::StrCat("My name is ", name, "."));
    if (!a.ok()) return a.status();
    absl::StatusOr<std::string> b = ChatTurn(engine, state, "What is my name?");
    if (!b.ok()) return b.status();
    ++r.total;
    if (absl::StrContains(*b, name)) {
      ++r.correct;
    } else {
      r.failures.push_back(absl::StrCat(name, ": ", *b));
    }
  }
  return r;
}

absl::StatusOr<EvalResult> EvalCapitals(engine::Engine& engine) {
  EvalResult r;
  for (const CountryFact& f : CapitalFacts()) {
    engine::State state = engine.NewState();
    absl::StatusOr<std::string> a = ChatTurn(
        engine, state, absl::StrCat("What is the capital of ", f.country, "?"));
    if (!a.ok()) return a.status();
    ++r.total;
    if (absl::StrContains(*a, f.capital)) {
      ++r.correct;
    } else {
      r.failures.push_back(absl::StrCat(f.country, ": ", *a));
    }
  }
  return r;
}

}  // namespace rwkv::train
