// Scheduler: the one thread that owns the Engine. Jobs (job.h) are queued by
// Submit(), which never blocks on the engine, and run by a continuous-
// batching loop in the style of TGI's router. Every step it
//   1. ends jobs whose owner says stop (client gone, session deleted),
//   2. runs the rows PlanStep() chooses (batch_planner.h): a token of every
//      decoding turn, plus one prompt token of each waiting job that rides
//      along, and a chunk of one waiting prompt, in ONE engine call
//      (Engine::ForwardSegments: one pass over the weights, so a step with
//      a chunk is not two passes; ForwardBatch when there is no chunk,
//      Forward for a chunk alone),
// and hands each row's logits to its job (one place: the job's stream).
// Rows and chunks are shared fairly between tenants (round robin by tenant,
// see batch_planner.h): one tenant's flood of turns cannot starve another's.
// Batching is invisible: each turn has its own state, sampler and RNG, and
// the engine computes every row as a single step would (bit-identical on the
// fp32 CPU path). A row whose logits are NaN or infinite (its state left
// the float range) ends that job alone with OUT_OF_RANGE; any other engine
// failure ends the jobs of that call with INTERNAL.
// Thread-safe: Submit, stats and Stop may be called from any thread.
#ifndef RWKV_SERVER_SCHED_SCHEDULER_H_
#define RWKV_SERVER_SCHED_SCHEDULER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "engine/engine.h"
#include "engine/tokenizer.h"
#include "server/sched/batch_planner.h"
#include "server/sched/job.h"

namespace rwkv::server {

struct SchedulerOptions {
  // Most rows of one batched step.
  int max_batch = 32;
  // Most prompt tokens fed as one chunk per step.
  int chunk_size = 32;
  // Most jobs queued or running; more is RESOURCE_EXHAUSTED.
  int max_jobs = 4096;
};

struct SchedulerStats {
  int64_t decode_steps = 0;    // batched forward calls
  int64_t decode_rows = 0;     // sum of their batch sizes
  int64_t prefill_chunks = 0;  // prompt chunks fed
  int64_t prompt_tokens = 0;   // prompt tokens fed
  int64_t tokens_generated = 0;
  int64_t turns_finished = 0;
  int64_t jobs_failed = 0;  // ended early (cancelled, aborted, errors)
  int64_t running = 0;  // jobs whose prompt has begun (computing or decoding)
  int64_t waiting = 0;  // jobs queued, none of their prompt fed yet
  // batch_size_counts[n]: batched forward steps with n rows (n <= max_batch).
  std::vector<int64_t> batch_size_counts;
  double avg_batch_size() const {
    return decode_steps == 0 ? 0.0
                             : static_cast<double>(decode_rows) / decode_steps;
  }
};

class Scheduler {
 public:
  // `engine` and `tokenizer` must outlive the scheduler. The loop thread
  // starts at once.
  Scheduler(engine::Engine* engine, const engine::Tokenizer* tokenizer,
            SchedulerOptions options);
  // Calls Stop().
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a job. On error (UNAVAILABLE when stopping, RESOURCE_EXHAUSTED
  // when full) the job is destroyed without its completion being called;
  // on success its completion is called exactly once (TurnSink::OnComplete
  // or OnError; PrefillJob::done).
  absl::Status Submit(Job job) ABSL_LOCKS_EXCLUDED(mu_);

  // Ends queued and running jobs with UNAVAILABLE and joins the thread.
  // Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  SchedulerStats stats() const ABSL_LOCKS_EXCLUDED(mu_);
  const SchedulerOptions& options() const { return options_; }

  class Stream;  // a job in the loop (scheduler.cc)
  struct Counters {
    std::atomic<int64_t> decode_steps{0}, decode_rows{0}, prefill_chunks{0},
        prompt_tokens{0}, tokens_generated{0}, turns_finished{0},
        jobs_failed{0};
    // Jobs in the loop none of whose prompt has been fed (set every step).
    std::atomic<int64_t> not_started{0};
  };

 private:
  void Loop();
  // Moves queued jobs into the loop; returns false once stopping.
  bool Admit() ABSL_LOCKS_EXCLUDED(mu_);
  // The steps of the file comment; loop thread only.
  void EndStopped();
  // The planner's view of the loop's jobs.
  StepInput PlanInput() const;
  // Marks the planned rows and chunk served at step_.
  void MarkServed(const StepPlan& plan);
  // The batched rows of `plan`; with `chunk_job` (the plan's chunk) in the
  // same engine call (Engine::ForwardSegments) when not null.
  void BatchStep(const StepPlan& plan, Stream* chunk_job);
  // Feeds `tokens` of `job`'s prompt (a prefilling job) as one chunk, alone
  // (a step without batched rows).
  void ChunkStep(Stream* job, size_t tokens);
  // The planner's index of `tenant` (numbered as first seen).
  uint32_t TenantIndex(const std::string& tenant);
  // Hands `row` to the stream; drops it if it has ended, else keeps it
  // decoding (moved to decoding_ if `into_decoding`).
  void HandleLogits(std::unique_ptr<Stream>& stream,
                    absl::Span<const float> row, bool into_decoding);
  void FailAll(const absl::Status& status);

  // Constant after construction.
  engine::Engine* const engine_;
  const engine::Tokenizer* const tokenizer_;
  const SchedulerOptions options_;
  const BatchLimits limits_;

  mutable absl::Mutex mu_;
  std::deque<Job> inbox_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Jobs in the loop (mirrors the loop-only lists' sizes).
  int active_ ABSL_GUARDED_BY(mu_) = 0;

  // Loop-thread only.
  std::deque<std::unique_ptr<Stream>> prefilling_;
  std::vector<std::unique_ptr<Stream>> decoding_;
  uint64_t step_ = 0;
  uint64_t served_ = 0;  // rows and chunks served so far (PlanRow)
  absl::flat_hash_map<std::string, uint32_t> tenant_ids_;
  std::vector<uint64_t> tenant_last_chunk_;  // by tenant index

  Counters counters_;
  // [n]: batched steps with n rows; sized max_batch + 1.
  std::vector<std::atomic<int64_t>> batch_size_counts_;
  std::thread thread_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SCHED_SCHEDULER_H_
