// TurnChannel: hands one turn's output from the scheduler to the HTTP
// handler thread that answers the request. The scheduler side is a
// TurnStream (never blocks: events are queued); the handler waits for them
// with Next(). Cancel() is how the handler says the client has gone (or the
// server is shutting down): the turn stops at the next scheduler step and
// is rolled back, and its end still arrives through Next(). The queue holds
// at most one turn's reply (bounded by max_tokens). Thread-safe.
#ifndef RWKV_SERVER_HTTP_TURN_CHANNEL_H_
#define RWKV_SERVER_HTTP_TURN_CHANNEL_H_

#include <atomic>
#include <deque>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/app/app_types.h"

namespace rwkv::server {

class TurnChannel final : public TurnStream {
 public:
  // One thing the turn did: a chunk, or its end (`finish`).
  struct Event {
    std::optional<TurnChunk> chunk;
    std::optional<absl::Status> finish;
  };

  // TurnStream (the scheduler's side).
  bool IsCancelled() const override { return cancelled_.load(); }
  void OnChunk(TurnChunk chunk) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnFinish(const absl::Status& status) override ABSL_LOCKS_EXCLUDED(mu_);

  // The next event, waiting at most `timeout`; nullopt if none came. After
  // the finish event there are no more.
  std::optional<Event> Next(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);

  // Stops the turn; `reason` is what the handler reports for it (e.g.
  // UNAVAILABLE on shutdown). The first reason wins.
  void Cancel(const absl::Status& reason) ABSL_LOCKS_EXCLUDED(mu_);
  // The reason given to Cancel() (OK if it was not called).
  absl::Status cancel_reason() const ABSL_LOCKS_EXCLUDED(mu_);
  // True once the finish event has been queued.
  bool finished() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  std::atomic<bool> cancelled_{false};
  mutable absl::Mutex mu_;
  std::deque<Event> events_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status cancel_reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_TURN_CHANNEL_H_
