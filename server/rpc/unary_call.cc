#include "server/rpc/unary_call.h"

#include <utility>

#include "absl/time/clock.h"
#include "common/log.h"
#include "server/rpc/proto_convert.h"
#include "server/rpc/status_util.h"

namespace rwkv::server {

UnaryCall::UnaryCall(grpc::CallbackServerContext* ctx, ChatApp* app,
                     absl::string_view method, absl::string_view session_id)
    : ctx_(ctx),
      app_(app),
      method_(method),
      session_id_(session_id),
      start_(absl::Now()) {}

void UnaryCall::Finish(const absl::Status& status) {
  const grpc::Status answer = ToGrpcStatus(status);
  common::RequestLog log;
  log.method = method_;
  log.session_id = session_id_;
  log.status_code = status.code();
  log.status_message = answer.error_message();
  log.duration = absl::Now() - start_;
  common::LogRequest(log);
  ServerUnaryReactor::Finish(answer);
}

ChatApp::Callback<SessionInfo> UnaryCall::Reply(rwkv::v1::SessionInfo* resp) {
  return [this, resp](absl::StatusOr<SessionInfo> info) {
    if (info.ok()) ToProto(*info, resp);
    Finish(info.status());
  };
}

ChatApp::Callback<SessionInfo> UnaryCall::Create(rwkv::v1::SessionInfo* resp) {
  return [this, resp](absl::StatusOr<SessionInfo> info) {
    if (info.ok()) {
      ToProto(*info, resp);
      created_ = info->id;
    }
    Finish(info.status());
  };
}

ChatApp::StatusCallback UnaryCall::Status() {
  return [this](absl::Status status) { Finish(status); };
}

std::function<bool()> UnaryCall::Cancelled() const {
  grpc::CallbackServerContext* ctx = ctx_;
  return [ctx] { return ctx->IsCancelled(); };
}

void UnaryCall::OnDone() {
  if (!created_.empty() && ctx_->IsCancelled()) {
    app_->DeleteSession(created_, [](absl::Status) {});
  }
  delete this;
}

}  // namespace rwkv::server
