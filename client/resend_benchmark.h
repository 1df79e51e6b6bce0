// ResendBenchmark: what a client that resends its whole conversation every
// turn (as OpenAI-style clients do) costs on rwkv-server's HTTP front.
//
// Warm run: one conversation of N turns through POST /v1/chat/completions,
// each request holding every earlier message and the model's replies; the
// server starts from the state cached after the previous reply, so usage
// reports most of the prompt as cached. Cold run: for each turn, the same
// history computed from nothing (its first message, a system line with a
// random tag, is replaced by one with another tag of the same length, so no
// prefix of it is cached). Per turn: prompt tokens, tokens computed
// (prompt - cached) and the time to the first token, warm and cold.
// Thread-compatible (one Run at a time).
#ifndef RWKV_CLIENT_RESEND_BENCHMARK_H_
#define RWKV_CLIENT_RESEND_BENCHMARK_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/http_load_target.h"
#include "nlohmann/json.hpp"

namespace rwkv::client {

struct ResendTurnResult {
  int turn = 0;  // 1-based
  int prompt_tokens = 0;
  int warm_cached_tokens = 0;
  int warm_computed_tokens = 0;
  double warm_ttft_ms = 0;
  int cold_computed_tokens = 0;
  double cold_ttft_ms = 0;
  // Bytes of the turn's new user message in the chat template (its
  // tokens with the byte tokenizer).
  int new_message_bytes = 0;
};

class ResendBenchmark {
 public:
  // `target` must outlive this. Replies are greedy, at most
  // `reply_tokens` tokens (the template's stop ends them earlier).
  ResendBenchmark(HttpLoadTarget* target, int reply_tokens)
      : target_(target), reply_tokens_(reply_tokens) {}

  absl::StatusOr<std::vector<ResendTurnResult>> Run(int turns);

 private:
  struct Answer {
    std::string text;
    int prompt_tokens = 0;
    int cached_tokens = 0;
    double ttft_ms = 0;
  };
  // One streamed chat completion of `messages`.
  absl::StatusOr<Answer> Complete(const nlohmann::json& messages,
                                  int max_tokens);

  HttpLoadTarget* const target_;
  const int reply_tokens_;
};

}  // namespace rwkv::client

#endif  // RWKV_CLIENT_RESEND_BENCHMARK_H_
