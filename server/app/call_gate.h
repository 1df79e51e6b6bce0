// CallGate: the server's front door for shutdown. Every call of every front
// (gRPC, HTTP) enters before doing anything and leaves when it is done.
// Once StartDraining() has returned, every Enter() answers UNAVAILABLE
// ("the server is shutting down"), so a call arriving after SIGTERM never
// sees CANCELLED or a half-stopped server; calls already in may finish
// (WaitIdle), and the scheduler's stop ends what is left with UNAVAILABLE.
// Thread-safe.
#ifndef RWKV_SERVER_APP_CALL_GATE_H_
#define RWKV_SERVER_APP_CALL_GATE_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace rwkv::server {

class CallGate {
 public:
  // OK (the call is in: Leave() it later) or UNAVAILABLE once draining.
  absl::Status Enter() ABSL_LOCKS_EXCLUDED(mu_);
  void Leave() ABSL_LOCKS_EXCLUDED(mu_);
  void StartDraining() ABSL_LOCKS_EXCLUDED(mu_);
  bool draining() const ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until no call is in or `deadline` passes; true if none is.
  bool WaitIdle(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);
  int64_t in_flight() const ABSL_LOCKS_EXCLUDED(mu_);

  static absl::Status ShuttingDown() {
    return absl::UnavailableError("the server is shutting down");
  }

 private:
  mutable absl::Mutex mu_;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_CALL_GATE_H_
