// TurnCanceller: cancels a streaming turn (ChatClient::Chat / Generate) from
// another thread, also while no chunk is arriving (e.g. while the server
// feeds a long prompt), which a chunk callback alone cannot do.
//
// Thread safety: Cancel(), Reset() and cancelled() may be called from any
// thread, concurrently with the turn. Not async-signal-safe: a signal
// handler should set a flag that a thread turns into Cancel().
#ifndef RWKV_CLIENT_TURN_CANCELLER_H_
#define RWKV_CLIENT_TURN_CANCELLER_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/client_context.h"

namespace rwkv::client {

class TurnCanceller {
 public:
  TurnCanceller() = default;
  TurnCanceller(const TurnCanceller&) = delete;
  TurnCanceller& operator=(const TurnCanceller&) = delete;

  // Cancels the attached turn now; a turn attached later (before Reset())
  // is cancelled as soon as it starts.
  void Cancel() ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets an earlier Cancel().
  void Reset() ABSL_LOCKS_EXCLUDED(mu_);
  bool cancelled() const ABSL_LOCKS_EXCLUDED(mu_);

  // Used by ChatClient around one call; `context` must stay valid until
  // Detach().
  void Attach(grpc::ClientContext* context) ABSL_LOCKS_EXCLUDED(mu_);
  void Detach() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace rwkv::client

#endif  // RWKV_CLIENT_TURN_CANCELLER_H_
