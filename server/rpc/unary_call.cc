#include "server/rpc/unary_call.h"

#include <utility>

#include "server/rpc/proto_convert.h"
#include "server/rpc/status_util.h"

namespace rwkv::server {

void UnaryCall::Finish(const absl::Status& status) {
  ServerUnaryReactor::Finish(ToGrpcStatus(status));
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
