#include "server/rpc/unary_call.h"

#include <utility>

#include "absl/time/clock.h"
#include "common/log.h"
#include "server/app/retry_hint.h"
#include "server/rpc/proto_convert.h"
#include "server/rpc/status_util.h"

namespace rwkv::server {

UnaryCall::UnaryCall(grpc::CallbackServerContext* ctx, const RpcEnv& env,
                     absl::string_view method, absl::string_view session_id)
    : ctx_(ctx),
      env_(env),
      entered_(env.gate->Enter().ok()),
      method_(method),
      session_id_(session_id),
      start_(absl::Now()) {}

std::optional<Caller> UnaryCall::Admit() {
  if (!entered_) {
    Finish(CallGate::ShuttingDown());
    return std::nullopt;
  }
  absl::StatusOr<Caller> caller = CallerOf(env_, *ctx_);
  if (!caller.ok()) {
    Finish(caller.status());
    return std::nullopt;
  }
  caller_ = *caller;
  return caller_;
}

void UnaryCall::Finish(const absl::Status& status) {
  const grpc::Status answer = ToGrpcStatus(status);
  if (std::optional<int64_t> wait = RetryHintSeconds(status)) {
    ctx_->AddTrailingMetadata("retry-after", std::to_string(*wait));
  }
  common::RequestLog log;
  log.method = method_;
  log.session_id = session_id_;
  if (caller_.has_value()) log.tenant = caller_->tenant;
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
  if (!created_.empty() && ctx_->IsCancelled() && caller_.has_value()) {
    env_.app->DeleteSession(*caller_, created_, [](absl::Status) {});
  }
  if (entered_) env_.gate->Leave();
  delete this;
}

}  // namespace rwkv::server
