// The scheduler's jobs and how it talks back. Two typed jobs, each with its
// own completion:
//  * GenerateJob: a Generate/Chat turn. Its prompt is fed, then tokens are
//    sampled and streamed to its TurnSink until a stop; the sink gets the
//    final state (OnComplete) or the reason it stopped early (OnError).
//  * PrefillJob: feeds a prompt into a state and hands back the state and the
//    logits after the prompt (CreateSession's prefix).
// No gRPC, no sessions: the application layer decides what a finished turn
// means (commit the session, fill the prefix cache, answer the client).
#ifndef RWKV_SERVER_SCHED_JOB_H_
#define RWKV_SERVER_SCHED_JOB_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/logits.h"
#include "engine/sampling_params.h"
#include "engine/state.h"

namespace rwkv::server {

enum class FinishReason { kNone, kLength, kStop, kEos };

// One streamed piece of a reply. `text` is complete UTF-8.
struct TurnChunk {
  std::string text;
  std::vector<int32_t> token_ids;
  // Set on the last chunk only.
  FinishReason finish_reason = FinishReason::kNone;
  int32_t prompt_tokens = 0;  // the whole prompt, cached part included
  int32_t generated_tokens = 0;
  int32_t cached_tokens = 0;  // prompt tokens served from the prefix cache
  // The token count of the turn's state after this chunk.
  int64_t token_count = 0;
};

// Receives one generating turn's output. Called on the scheduler thread;
// implementations must not block.
class TurnSink {
 public:
  virtual ~TurnSink() = default;
  // OK to go on; otherwise why the turn must stop now (e.g. CANCELLED: the
  // client has gone; ABORTED: the session was deleted). Checked every step.
  virtual absl::Status Check() const = 0;
  // The scheduler has begun feeding the prompt (the turn waited in the
  // queue until now). Once, before any chunk.
  virtual void OnStarted() {}
  // The whole prompt has been fed: `state` holds it and `logits` are those
  // after its last token (the first token is sampled from them next). Once,
  // before any chunk; the state must not be kept (copy it).
  virtual void OnPromptDone(const engine::State& state,
                            absl::Span<const float> logits) {}
  // A piece of the reply, never the last one.
  virtual void OnChunk(TurnChunk chunk) = 0;
  // The turn ended: `final_state` holds the prompt and every reply token
  // fed, `logits` are those after its last token, `last` has the finish
  // reason and usage. Called at most once, and then OnError is not.
  virtual void OnComplete(engine::State final_state,
                          absl::Span<const float> logits, TurnChunk last) = 0;
  // The turn failed or stopped early (nothing of it is kept). Called at
  // most once, and then OnComplete is not.
  virtual void OnError(absl::Status status) = 0;
};

struct GenerateJob {
  // The state the prompt is fed into (the turn's own copy).
  engine::State state;
  std::vector<int32_t> prompt;  // non-empty
  engine::SamplingParams sampling;
  int max_tokens = 0;  // > 0
  std::vector<std::string> stop;
  bool ignore_eos = false;
  // Prompt tokens already in `state` from the prefix cache (usage only).
  int32_t cached_tokens = 0;
  // The tenant the turn runs for (the scheduler is fair between tenants).
  std::string tenant;
  std::unique_ptr<TurnSink> sink;  // non-null
};

struct PrefillResult {
  engine::State state;
  engine::Logits logits;  // one row: after the prompt's last token
};

struct PrefillJob {
  engine::State state;
  std::vector<int32_t> prompt;  // non-empty
  // OK to go on; otherwise why to stop (the caller has gone). Optional.
  std::function<absl::Status()> check;
  // The tenant the job runs for (the scheduler is fair between tenants).
  std::string tenant;
  // Called once, on the scheduler thread, with the result or the error.
  absl::AnyInvocable<void(absl::StatusOr<PrefillResult>)> done;
};

using Job = std::variant<GenerateJob, PrefillJob>;

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SCHED_JOB_H_
