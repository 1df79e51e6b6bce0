// UnaryCall: the reactor of one unary RPC. The application layer answers
// through the callbacks it makes (Reply, Create, Finish): each fills the
// response, then Finish() ends the call exactly once (from any thread, also
// before the handler returns). For calls that create a session, OnDone()
// undoes the creation when the client never got the answer (it cancelled
// or its deadline passed while the work ran), so a call that did not answer
// OK leaves nothing behind. Deletes itself in OnDone.
// Admission: the constructor enters the call gate (a call arriving after
// shutdown began is UNAVAILABLE); Admit() then authenticates the caller.
// A RESOURCE_EXHAUSTED answer with a retry hint carries trailing metadata
// `retry-after: <seconds>`.
#ifndef RWKV_SERVER_RPC_UNARY_CALL_H_
#define RWKV_SERVER_RPC_UNARY_CALL_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "rwkv/v1/chat.pb.h"
#include "server/app/chat_app.h"
#include "server/rpc/rpc_env.h"

namespace rwkv::server {

class UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  // `method` and `session_id` go into the call's request log record.
  UnaryCall(grpc::CallbackServerContext* ctx, const RpcEnv& env,
            absl::string_view method, absl::string_view session_id);

  // The caller, or nullopt once the call has been answered (the server is
  // shutting down: UNAVAILABLE; a missing or bad key: UNAUTHENTICATED).
  std::optional<Caller> Admit();

  // Ends the call with `status`.
  void Finish(const absl::Status& status);
  // A callback that fills `resp` with the session's info and ends the call.
  ChatApp::Callback<SessionInfo> Reply(rwkv::v1::SessionInfo* resp);
  // The same for a call that creates the session (see the file comment).
  ChatApp::Callback<SessionInfo> Create(rwkv::v1::SessionInfo* resp);
  // A callback that ends the call with the status it gets.
  ChatApp::StatusCallback Status();
  // True once the client has gone; usable until the call ends.
  std::function<bool()> Cancelled() const;

  void OnDone() override;

 private:
  grpc::CallbackServerContext* const ctx_;
  const RpcEnv env_;
  // True if the call entered the gate (it leaves in OnDone).
  const bool entered_;
  // The admitted caller (undoing a creation acts as it).
  std::optional<Caller> caller_;
  const std::string method_;
  const std::string session_id_;
  const absl::Time start_;
  // The session this call created (undone if the answer was not delivered).
  std::string created_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_RPC_UNARY_CALL_H_
