// Scheduler: the one thread that owns the Engine. Turns are queued by
// Submit() (never blocks on the engine) and run by a continuous-batching loop
// in the style of TGI's router: every step it
//   1. drops turns whose client has gone (no more computation for them),
//   2. runs ONE Engine::ForwardBatch over every decoding turn (at most
//      max_batch, round robin beyond that), samples each row with the turn's
//      own Sampler and streams the new text,
//      The same batched step carries the next prompt token of every other
//      turn still reading its prompt (while rows are left), so many new
//      turns start together instead of one after another;
//   3. feeds at most ONE prompt chunk (at most chunk_size tokens, sequence
//      mode) of the oldest turn still reading its prompt,
// so a long prompt never freezes the other streams. Batching is invisible:
// each turn has its own state, sampler and RNG, and the engine's batched step
// computes each row as a single step would.
//
// End of a turn (see also TurnSink and StateManager):
//  * stop string: the text before it is sent; the state holds every token up
//    to and including the one that completed it;
//  * max_tokens: all text is sent; the state holds every generated token;
//  * end-of-text token (unless ignore_eos): neither sent nor fed;
//  * client cancel / deadline / error / shutdown: computation stops at once
//    and the turn is rolled back: the session keeps its pre-turn state.
// Prefill-only jobs (CreateSession's prefix) are fed like prompts, in
// chunks, and hand back the state instead of generating. Besides those,
// RunOnEngineThread() runs short tasks that need the engine (state parsing)
// between steps.
//
// Thread-safe: Submit, RunOnEngineThread, stats and Stop may be called from
// any thread.
#ifndef RWKV_SERVER_SCHEDULER_H_
#define RWKV_SERVER_SCHEDULER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "engine/engine.h"
#include "engine/tokenizer.h"
#include "server/state_manager.h"
#include "server/turn.h"

namespace rwkv::server {

struct SchedulerOptions {
  // Most turns decoded in one batched step.
  int max_batch = 32;
  // Most prompt tokens fed in one step (one chunk per step).
  int chunk_size = 32;
  // Most turns queued or running; more is RESOURCE_EXHAUSTED.
  int max_turns = 4096;
};

struct SchedulerStats {
  int64_t decode_steps = 0;    // batched forward calls
  int64_t decode_rows = 0;     // sum of their batch sizes
  int64_t prefill_chunks = 0;  // prompt chunks fed
  int64_t prompt_tokens = 0;   // prompt tokens fed
  int64_t tokens_generated = 0;
  int64_t turns_finished = 0;
  int64_t turns_cancelled = 0;
  double avg_batch_size() const {
    return decode_steps == 0 ? 0.0
                             : static_cast<double>(decode_rows) / decode_steps;
  }
};

class Scheduler {
 public:
  // `engine`, `tokenizer` and `sessions` must outlive the scheduler. The
  // loop thread starts at once.
  Scheduler(engine::Engine* engine, const engine::Tokenizer* tokenizer,
            StateManager* sessions, SchedulerOptions options);
  // Calls Stop().
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a turn or a prefill-only job. On error (UNAVAILABLE when
  // stopping, RESOURCE_EXHAUSTED when full) the lease is abandoned and
  // neither the sink nor on_prefilled is called; on success the sink gets its
  // chunks and exactly one OnFinish (or on_prefilled is called once).
  // REQUIRES: turn.prompt non-empty, max_tokens > 0, valid sampling, exactly
  // one of sink / on_prefilled.
  absl::Status Submit(Turn turn) ABSL_LOCKS_EXCLUDED(mu_);

  // Runs `task` on the engine thread between steps. UNAVAILABLE once
  // stopping (the task is then not run). Tasks queued before Stop() run.
  absl::Status RunOnEngineThread(std::function<void(engine::Engine&)> task)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Fails queued and running turns with UNAVAILABLE (rolled back), runs the
  // queued tasks and joins the thread. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return options_; }

 private:
  struct Stream;

  void Loop();
  // Steps 1-3 above; only on the loop thread.
  void DropCancelled();
  void DecodeStep();
  void PrefillStep();
  // Samples the next token of `s` from `row` and streams it.
  absl::Status HandleLogits(Stream& s, absl::Span<const float> row);
  void Complete(std::unique_ptr<Stream> s);
  // Hands a prefill-only job its state and logits.
  void FinishPrefill(std::unique_ptr<Stream> s, engine::Logits logits);
  void Fail(std::unique_ptr<Stream> s, const absl::Status& status);
  // Sends what `s` accumulated this step.
  void Emit(Stream& s);
  void SetActiveCount() ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  engine::Engine* const engine_;
  const engine::Tokenizer* const tokenizer_;
  StateManager* const sessions_;
  const SchedulerOptions options_;

  mutable absl::Mutex mu_;
  std::deque<Turn> inbox_ ABSL_GUARDED_BY(mu_);
  std::deque<std::function<void(engine::Engine&)>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Turns running in the loop (mirrors the loop-only lists).
  int active_ ABSL_GUARDED_BY(mu_) = 0;

  // Loop-thread only.
  std::deque<std::unique_ptr<Stream>> prefilling_;
  std::vector<std::unique_ptr<Stream>> decoding_;
  size_t round_robin_ = 0;

  std::atomic<int64_t> decode_steps_{0}, decode_rows_{0}, prefill_chunks_{0},
      prompt_tokens_{0}, tokens_generated_{0}, turns_finished_{0},
      turns_cancelled_{0};

  std::thread thread_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SCHEDULER_H_
