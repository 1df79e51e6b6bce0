// ChatApp: the application layer. Every operation of the chat service, in
// plain C++ types (app_types.h) with absl::Status in and out, so any front
// (gRPC in server/rpc, HTTP) calls exactly this. It validates requests
// (request_checks.h; limits in AppOptions), renders the chat template,
// tokenizes, takes sessions' leases and queues work for the scheduler; it
// never waits for the engine or the disk: operations that change sessions
// or need the engine answer through a callback (on any thread, possibly
// before the call returns). State bytes are parsed on the calling thread
// (the Model is thread-safe) and never copied under a lock.
// Every session operation takes the Caller (caller.h): it sees only its
// tenant's sessions (admins: all; another tenant's session answers exactly
// as an unknown id), new sessions belong to its tenant, and its tenant's
// quotas apply (sessions and state bytes in the session layer, concurrent
// turns and tokens per minute in TenantThrottle). Named initial states and
// the prefix cache are shared read-only by every tenant.
// Thread-safe. Borrows everything it is given; all must outlive it.
#ifndef RWKV_SERVER_APP_CHAT_APP_H_
#define RWKV_SERVER_APP_CHAT_APP_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/model.h"
#include "engine/prefix_cache.h"
#include "engine/state_inspect.h"
#include "engine/state_ops.h"
#include "engine/tokenizer.h"
#include "server/app/app_options.h"
#include "server/app/app_types.h"
#include "server/app/caller.h"
#include "server/app/chat_template.h"
#include "server/app/conversation_renderer.h"
#include "server/app/prefix_prefill.h"
#include "server/app/prompt_tokenizer.h"
#include "server/app/tenant_throttle.h"
#include "server/app/turn_metrics.h"
#include "server/app/turn_starter.h"
#include "server/sched/scheduler.h"
#include "server/session/session_manager.h"

namespace rwkv::server {

class ChatApp {
 public:
  template <typename T>
  using Callback = absl::AnyInvocable<void(absl::StatusOr<T>)>;
  using StatusCallback = absl::AnyInvocable<void(absl::Status)>;

  // `prefix_cache` may be null (no caching); `metrics` too (turns are not
  // measured).
  ChatApp(std::shared_ptr<const engine::Model> model,
          const engine::Tokenizer* tokenizer, SessionManager* sessions,
          Scheduler* scheduler, engine::PrefixCache* prefix_cache,
          AppOptions options, TurnMetrics* metrics = nullptr);
  ChatApp(const ChatApp&) = delete;
  ChatApp& operator=(const ChatApp&) = delete;

  // Sessions.
  void CreateSession(const Caller& caller, CreateSessionRequest request,
                     Callback<SessionInfo> done);
  absl::StatusOr<SessionInfo> GetSession(const Caller& caller,
                                         const std::string& id);
  absl::StatusOr<SessionPage> ListSessions(const Caller& caller,
                                           int32_t page_size,
                                           const std::string& page_token);
  void DeleteSession(const Caller& caller, const std::string& id,
                     StatusCallback done);
  void ResetSession(const Caller& caller, const std::string& id,
                    Callback<SessionInfo> done);
  void TouchSession(const Caller& caller, const std::string& id,
                    int64_t ttl_seconds, Callback<SessionInfo> done);

  // A Generate/Chat turn on a session; its output and end go to `stream`
  // (errors found before it starts too).
  void StartTurn(const Caller& caller, TurnRequest request,
                 std::shared_ptr<TurnStream> stream);
  // A turn that belongs to no session (see DetachedTurnRequest): stateless
  // requests that resend a whole conversation, and turns continued from a
  // stored state that keep their result as a new session (the caller's).
  void StartDetachedTurn(const Caller& caller, DetachedTurnRequest request,
                         std::shared_ptr<TurnStream> stream);

  // State tools.
  void ForkSession(const Caller& caller, ForkRequest request,
                   Callback<SessionInfo> done);
  void BlendSessions(const Caller& caller, BlendRequest request,
                     Callback<SessionInfo> done);
  void DecaySession(const Caller& caller, const std::string& id, double factor,
                    Callback<SessionInfo> done);
  absl::StatusOr<engine::StateReport> InspectSession(const Caller& caller,
                                                     const std::string& id);
  absl::StatusOr<engine::StateDistance> SessionDistance(
      const Caller& caller, const std::string& session_a,
      const std::string& session_b);
  absl::StatusOr<ExportedState> ExportState(const Caller& caller,
                                            const std::string& id,
                                            const std::string& dtype);
  void ImportState(const Caller& caller, ImportRequest request,
                   Callback<SessionInfo> done);

  ModelInfo GetModelInfo() const;
  const ChatTemplate& chat_template() const { return template_; }
  const ConversationRenderer& renderer() const { return renderer_; }
  const AppOptions& options() const { return options_; }
  const engine::Tokenizer& tokenizer() const { return prompts_.tokenizer(); }

 private:
  // The state a new session starts from before its prefix: parsed bytes,
  // a named server state, or the fresh state (`shared` for the latter two).
  struct Base {
    StatePtr state;
    bool shared = false;
    bool fresh = false;
  };
  // Takes request.initial_state's bytes (parsed in place, never copied).
  absl::StatusOr<Base> ResolveBase(CreateSessionRequest& request) const;
  // Checks a request that creates a session with `id` for `caller`.
  absl::StatusOr<absl::Duration> CheckNewSession(const Caller& caller,
                                                 const std::string& id,
                                                 absl::string_view id_field,
                                                 int64_t ttl_seconds);
  // A new session owned by `caller`'s tenant, under its quota.
  static NewSession NewSessionFor(const Caller& caller, std::string id,
                                  absl::Duration ttl);
  // A lease's commit answered with the session's info.
  void CommitAndInfo(SessionLease lease, StatePtr state,
                     SessionLease::Initial initial, Callback<SessionInfo> done);

  // Constant after construction.
  const std::shared_ptr<const engine::Model> model_;
  SessionManager* const sessions_;
  Scheduler* const scheduler_;
  engine::PrefixCache* const prefix_cache_;
  const AppOptions options_;
  const ChatTemplate template_;
  const PromptTokenizer prompts_;
  const PrefixPrefill prefill_;
  // The fresh state plain sessions start from (shared, immutable).
  const StatePtr fresh_state_;
  const ConversationRenderer renderer_;
  TenantThrottle throttle_;  // before turns_, which borrows it
  TurnStarter turns_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_CHAT_APP_H_
