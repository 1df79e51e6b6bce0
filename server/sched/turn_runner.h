// TurnRunner: one turn's decoding logic, apart from the engine and the
// batching: its sampler (own RNG), the stream decoder that emits only
// complete UTF-8, the stop-string matcher and the end-of-turn rules:
//  * stop string: the text before it is sent; the token that completed it
//    is fed (the state holds it);
//  * max_tokens: all text is sent; every generated token is fed;
//  * end-of-text token (unless ignore_eos): neither sent nor fed.
// Thread-compatible (one per turn, used by the scheduler thread).
#ifndef RWKV_SERVER_SCHED_TURN_RUNNER_H_
#define RWKV_SERVER_SCHED_TURN_RUNNER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/sampler.h"
#include "engine/stream_decoder.h"
#include "engine/tokenizer.h"
#include "server/sched/job.h"
#include "server/sched/stop_matcher.h"

namespace rwkv::server {

class TurnRunner {
 public:
  // What the turn needs after a row of logits.
  enum class Next {
    kFeed,    // feed pending_token() and call OnLogits again with the result
    kFinish,  // the turn is over: take the last chunk with TakeLast()
  };

  // INVALID_ARGUMENT for bad sampling parameters. `tokenizer` must outlive
  // the runner.
  static absl::StatusOr<TurnRunner> Create(const GenerateJob& job,
                                           const engine::Tokenizer& tokenizer,
                                           int vocab_size);

  // Handles the logits after the last token fed (the prompt's last, or
  // pending_token()). Errors: sampling failures (e.g. non-finite logits).
  absl::StatusOr<Next> OnLogits(absl::Span<const float> row);
  // The token to feed next. REQUIRES: the last OnLogits returned kFeed.
  int32_t pending_token() const { return *pending_; }

  // The text and ids produced since the last call, if any; `token_count` is
  // the state's count before the pending token is fed.
  std::optional<TurnChunk> TakeChunk(int64_t token_count);
  // The last chunk: what is left, the finish reason and usage.
  TurnChunk TakeLast(int64_t token_count, int32_t prompt_tokens,
                     int32_t cached_tokens);

 private:
  TurnRunner(engine::Sampler sampler, const engine::Tokenizer& tokenizer,
             const GenerateJob& job);
  // Appends a sampled token's text, holding back what may become a stop.
  void Accept(int32_t token);

  engine::Sampler sampler_;
  const engine::Tokenizer* tokenizer_;
  engine::StreamDecoder decoder_;
  StopMatcher stops_;
  int max_tokens_;
  bool ignore_eos_;
  int generated_ = 0;
  // Sampled and sent, not yet fed.
  std::optional<int32_t> pending_;
  // Set once the turn has decided to end (after `pending_` is fed, if any).
  FinishReason finish_ = FinishReason::kNone;
  std::string out_text_;
  std::vector<int32_t> out_ids_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SCHED_TURN_RUNNER_H_
