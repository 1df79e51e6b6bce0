// DetachedTurn: the application's side of a turn that belongs to no session
// (app_types.h, DetachedTurnRequest), handed to the scheduler as its
// TurnSink. Chunks go to the front's stream. When the turn started from the
// fresh state, the states after its prompt and after its reply are cached
// under the conversation's tokens (reply_cache_key.h); at the end the final
// state is, if asked, kept as a new session; the last chunk is sent
// only after that session is stored. An early end keeps nothing. The turn
// stops when the client leaves (CANCELLED).
// Used by the scheduler thread; the stream may be cancelled from any thread.
#ifndef RWKV_SERVER_APP_DETACHED_TURN_H_
#define RWKV_SERVER_APP_DETACHED_TURN_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "server/app/app_types.h"
#include "server/app/reply_cache_key.h"
#include "server/app/tenant_throttle.h"
#include "server/sched/job.h"
#include "server/session/session_manager.h"

namespace rwkv::server {

class DetachedTurn final : public TurnSink {
 public:
  // The session a turn's final state is kept as: `session` without its
  // state, and the note's maker (KeepAs::note; may be empty).
  struct Keep {
    NewSession session;
    std::function<std::string(const std::string&, const TurnChunk&)> note;
  };

  // `cache_key` may be null (nothing cached); `sessions` must outlive the
  // turn when `keep` is set. `ticket` (may be null) is the tenant's turn
  // slot: held until the turn ends, charged with the tokens generated.
  DetachedTurn(std::shared_ptr<TurnStream> stream,
               std::unique_ptr<ReplyCacheKey> cache_key,
               std::optional<Keep> keep, SessionManager* sessions,
               std::unique_ptr<TenantThrottle::Ticket> ticket = nullptr);

  absl::Status Check() const override;
  void OnStarted() override { stream_->OnStarted(); }
  void OnPromptDone(const engine::State& state,
                    absl::Span<const float> logits) override;
  void OnChunk(TurnChunk chunk) override;
  void OnComplete(engine::State final_state, absl::Span<const float> logits,
                  TurnChunk last) override;
  void OnError(absl::Status status) override;

 private:
  std::shared_ptr<TurnStream> stream_;
  std::unique_ptr<ReplyCacheKey> cache_key_;
  std::optional<Keep> keep_;
  SessionManager* const sessions_;
  // The reply's text so far (for the kept session's note).
  std::string reply_;
  std::unique_ptr<TenantThrottle::Ticket> ticket_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_DETACHED_TURN_H_
