// TurnController: the application's side of one running turn on a session,
// handed to the scheduler as its TurnSink. It holds the session's lease and
// the front's stream: chunks go to the stream; at the end the new state is
// committed (the last chunk reaches the client only once the state is
// stored, so an acknowledged turn is never lost); an early end abandons the
// lease (the session keeps its pre-turn state) and reports the status. The
// turn stops when the client leaves (CANCELLED) or the session is deleted
// (ABORTED, "session ... was deleted"). Optionally the state after the
// whole turn is stored in the prefix cache (reply_cache_key.h).
// Used by the scheduler thread; the stream may be cancelled from any thread.
#ifndef RWKV_SERVER_APP_TURN_CONTROLLER_H_
#define RWKV_SERVER_APP_TURN_CONTROLLER_H_

#include <memory>

#include "server/app/app_types.h"
#include "server/app/reply_cache_key.h"
#include "server/app/tenant_throttle.h"
#include "server/sched/job.h"
#include "server/session/session_lease.h"

namespace rwkv::server {

class TurnController final : public TurnSink {
 public:
  // `cache_key` may be null (nothing cached). `ticket` (may be null) is the
  // tenant's turn slot: held until the turn ends, charged with the tokens
  // generated.
  TurnController(SessionLease lease, std::shared_ptr<TurnStream> stream,
                 std::unique_ptr<ReplyCacheKey> cache_key,
                 std::unique_ptr<TenantThrottle::Ticket> ticket = nullptr);

  absl::Status Check() const override;
  void OnStarted() override { stream_->OnStarted(); }
  void OnChunk(TurnChunk chunk) override;
  void OnComplete(engine::State final_state, absl::Span<const float> logits,
                  TurnChunk last) override;
  void OnError(absl::Status status) override;

 private:
  SessionLease lease_;
  std::shared_ptr<TurnStream> stream_;
  std::unique_ptr<ReplyCacheKey> cache_key_;
  std::unique_ptr<TenantThrottle::Ticket> ticket_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_TURN_CONTROLLER_H_
