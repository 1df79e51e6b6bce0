// Turn: one Generate/Chat request as the scheduler sees it, and TurnSink,
// the scheduler's only way to talk back to the client. gRPC-free, so the
// scheduler can be tested without a server.
#ifndef RWKV_SERVER_TURN_H_
#define RWKV_SERVER_TURN_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/logits.h"
#include "engine/sampling_params.h"
#include "engine/state.h"
#include "server/state_manager.h"

namespace rwkv::server {

enum class FinishReason { kNone, kLength, kStop, kEos, kCancelled };

// One streamed piece of a reply. `text` is complete UTF-8.
struct TurnChunk {
  std::string text;
  std::vector<int32_t> token_ids;
  // Set on the last chunk only.
  FinishReason finish_reason = FinishReason::kNone;
  int32_t prompt_tokens = 0;
  int32_t generated_tokens = 0;
  int32_t cached_tokens = 0;
  // The session's token count after this chunk.
  int64_t token_count = 0;
};

// Receives a turn's output. Implementations are thread-safe: the scheduler
// thread calls OnChunk/OnFinish while gRPC threads may cancel.
class TurnSink {
 public:
  virtual ~TurnSink() = default;
  // True once the client has gone (cancelled, deadline passed): the
  // scheduler stops computing for the turn at its next step.
  virtual bool IsCancelled() const = 0;
  // A piece of the reply (the last one has finish_reason set).
  virtual void OnChunk(TurnChunk chunk) = 0;
  // Called exactly once, last. OK after the final chunk; otherwise the
  // error (CANCELLED, UNAVAILABLE, INTERNAL, ...).
  virtual void OnFinish(const absl::Status& status) = 0;
};

// Receives the result of a prefill-only job: the state after the prompt and
// the logits after its last token, or the error.
using PrefillDone = std::function<void(
    absl::StatusOr<std::pair<engine::State, engine::Logits>> result)>;

struct Turn {
  // The session's lease (BeginTurn); the scheduler commits or abandons it.
  // Prefill-only jobs have no session: lease.session_id is empty and
  // lease.state is the state to feed the prompt into.
  TurnLease lease;
  std::vector<int32_t> prompt;  // non-empty
  engine::SamplingParams sampling;
  int max_tokens = 0;  // > 0
  std::vector<std::string> stop;
  bool ignore_eos = false;
  // Set for a generating turn.
  std::shared_ptr<TurnSink> sink;
  // Set for a prefill-only job (CreateSession's prefix): the prompt is fed
  // in chunks like any other, nothing is sampled, and this is called once
  // (on the scheduler thread) instead of the sink. `sink` must be null.
  PrefillDone on_prefilled;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_TURN_H_
