// TurnStarter: the application layer's turns (ChatApp delegates to it).
// A request becomes a prompt (raw text, one chat message in the template,
// or a conversation: ConversationRenderer), its sampling, limits and stop
// strings are checked (request_checks.h), and a GenerateJob goes to the
// scheduler with the turn's controller as its sink:
//  * a session turn (TurnController) takes the session's lease and commits
//    the state after the reply; a fresh session's first turn starts from
//    the longest cached prefix of its prompt;
//  * a detached turn (DetachedTurn) starts from a copy of a session's state
//    or from the fresh state through the prefix cache, commits nothing and
//    caches its final state under the conversation's tokens (see
//    DetachedTurnRequest).
// Every front's stream is wrapped in a MeteredTurnStream when metrics are
// given. Errors found before the turn starts go to the stream's OnFinish.
// Thread-safe; borrows everything it is given (all must outlive it).
#ifndef RWKV_SERVER_APP_TURN_STARTER_H_
#define RWKV_SERVER_APP_TURN_STARTER_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/prefix_cache.h"
#include "engine/tokenizer.h"
#include "server/app/app_options.h"
#include "server/app/app_types.h"
#include "server/app/caller.h"
#include "server/app/conversation_renderer.h"
#include "server/app/prompt_tokenizer.h"
#include "server/app/tenant_throttle.h"
#include "server/app/turn_metrics.h"
#include "server/sched/scheduler.h"
#include "server/session/session_manager.h"

namespace rwkv::server {

class TurnStarter {
 public:
  struct Deps {
    const AppOptions* options = nullptr;
    const ChatTemplate* chat_template = nullptr;
    const PromptTokenizer* prompts = nullptr;
    const ConversationRenderer* renderer = nullptr;
    SessionManager* sessions = nullptr;
    Scheduler* scheduler = nullptr;
    engine::PrefixCache* prefix_cache = nullptr;  // may be null
    TurnMetrics* metrics = nullptr;               // may be null
    // The fresh state plain sessions start from (shared, immutable).
    StatePtr fresh_state;
    // Per-tenant concurrent turns and tokens per minute.
    TenantThrottle* throttle = nullptr;
  };

  explicit TurnStarter(Deps deps) : d_(std::move(deps)) {}

  // Turns run for `caller`: its tenant's sessions only (another tenant's
  // is NOT_FOUND as an unknown id), its quotas, a kept session is its own.
  void StartSessionTurn(const Caller& caller, TurnRequest request,
                        std::shared_ptr<TurnStream> stream);
  void StartDetachedTurn(const Caller& caller, DetachedTurnRequest request,
                         std::shared_ptr<TurnStream> stream);

 private:
  // The job for `request` without its state and sink: prompt, sampling,
  // max_tokens, stop strings.
  absl::StatusOr<GenerateJob> Prepare(const TurnRequest& request) const;
  absl::StatusOr<std::vector<int32_t>> Prompt(const TurnRequest& r) const;
  // Starts `job` (prompt set) from the longest cached prefix of its prompt
  // (never the whole prompt: its last token is fed to get logits), if any.
  void StartFromCache(GenerateJob& job) const;
  absl::Status SubmitSessionTurn(const Caller& caller,
                                 const TurnRequest& request,
                                 std::shared_ptr<TurnStream> stream);
  absl::Status SubmitDetachedTurn(const Caller& caller,
                                  DetachedTurnRequest& request,
                                  std::shared_ptr<TurnStream> stream);
  std::shared_ptr<TurnStream> Meter(Front front,
                                    std::shared_ptr<TurnStream> stream) const;

  const Deps d_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_TURN_STARTER_H_
