// ActiveTurns: the HTTP turns in flight, so that shutdown can wait for them
// (for the grace period) and then stop the rest. A turn is registered for
// as long as its Registration lives. Thread-safe.
#ifndef RWKV_SERVER_HTTP_ACTIVE_TURNS_H_
#define RWKV_SERVER_HTTP_ACTIVE_TURNS_H_

#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/http/turn_channel.h"

namespace rwkv::server {

class ActiveTurns {
 public:
  // Unregisters its turn when destroyed. Move-only.
  class Registration {
   public:
    Registration() = default;
    Registration(ActiveTurns* turns, uint64_t id) : turns_(turns), id_(id) {}
    Registration(Registration&& other) noexcept { *this = std::move(other); }
    Registration& operator=(Registration&& other) noexcept;
    ~Registration();

   private:
    ActiveTurns* turns_ = nullptr;
    uint64_t id_ = 0;
  };

  // Registers a turn; CancelAll() stops it while it is registered.
  Registration Add(std::shared_ptr<TurnChannel> channel)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until no turn is registered or `deadline` passes; true if none is.
  bool WaitIdle(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);
  // Cancels every registered turn with `reason`.
  void CancelAll(const absl::Status& reason) ABSL_LOCKS_EXCLUDED(mu_);
  int64_t count() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Remove(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, std::shared_ptr<TurnChannel>> turns_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_ACTIVE_TURNS_H_
