// Chat evaluations of a model through the engine, the way a chat front end
// drives it: one State per conversation, each user turn fed as
// "User: {message}\n\nAssistant:", the reply generated greedily up to and
// including the blank line "\n\n" (which stays in the state, as the server
// keeps it), byte tokens.
#ifndef RWKV_TOOLS_TRAIN_CHAT_EVAL_H_
#define RWKV_TOOLS_TRAIN_CHAT_EVAL_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"

namespace rwkv::train {

// Feeds UserTurn(message) into `state` and returns the greedy reply (without
// the leading space and trailing "\n\n"), at most max_bytes long.
absl::StatusOr<std::string> ChatTurn(engine::Engine& engine,
                                     engine::State& state, std::string message,
                                     int max_bytes = 120);

struct EvalResult {
  int total = 0;
  int correct = 0;
  std::vector<std::string> failures;  // "name: reply"
  double rate() const {
    return total ? static_cast<double>(correct) / total : 0;
  }
};

// "My name is X." then "What is my name?" in one fresh state per name; a
// reply containing X counts.
absl::StatusOr<EvalResult> EvalNameMemory(
    engine::Engine& engine, const std::vector<std::string>& names);
// "What is the capital of C?" for every fact, from a fresh state; a reply
// containing the capital counts.
absl::StatusOr<EvalResult> EvalCapitals(engine::Engine& engine);

}  // namespace rwkv::train

#endif  // RWKV_TOOLS_TRAIN_CHAT_EVAL_H_
