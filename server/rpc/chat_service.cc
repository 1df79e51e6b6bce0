#include "server/rpc/chat_service.h"

#include <optional>
#include <utility>

#include "server/rpc/generate_reactor.h"
#include "server/rpc/proto_convert.h"
#include "server/rpc/unary_call.h"

namespace rwkv::server {
namespace {

// Ends `call` with a synchronous result, converted into `resp`.
template <typename T, typename Resp>
void Answer(UnaryCall* call, absl::StatusOr<T> result, Resp* resp) {
  if (result.ok()) ToProto(*std::move(result), resp);
  call->Finish(result.status());
}

}  // namespace

ChatService::Unary* ChatService::CreateSession(
    Context* ctx, const rwkv::v1::CreateSessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  auto* call = new UnaryCall(ctx, env_, "CreateSession", req->session_id());
  if (std::optional<Caller> caller = call->Admit()) {
    CreateSessionRequest request = FromProto(*req);
    request.cancelled = call->Cancelled();
    app_->CreateSession(*caller, std::move(request), call->Create(resp));
  }
  return call;
}

ChatService::Stream* ChatService::Generate(
    Context* ctx, const rwkv::v1::GenerateRequest* req) {
  auto* reactor = new GenerateReactor(ctx, env_, "Generate", req->session_id());
  if (std::optional<Caller> caller = reactor->Admit()) {
    app_->StartTurn(*caller, FromProto(*req), reactor->stream());
  }
  return reactor;
}

ChatService::Stream* ChatService::Chat(Context* ctx,
                                       const rwkv::v1::ChatRequest* req) {
  auto* reactor = new GenerateReactor(ctx, env_, "Chat", req->session_id());
  if (std::optional<Caller> caller = reactor->Admit()) {
    app_->StartTurn(*caller, FromProto(*req), reactor->stream());
  }
  return reactor;
}

ChatService::Unary* ChatService::GetSession(
    Context* ctx, const rwkv::v1::GetSessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  auto* call = new UnaryCall(ctx, env_, "GetSession", req->session_id());
  if (std::optional<Caller> caller = call->Admit()) {
    Answer(call, app_->GetSession(*caller, req->session_id()), resp);
  }
  return call;
}

ChatService::Unary* ChatService::ListSessions(
    Context* ctx, const rwkv::v1::ListSessionsRequest* req,
    rwkv::v1::ListSessionsResponse* resp) {
  auto* call = new UnaryCall(ctx, env_, "ListSessions", "");
  if (std::optional<Caller> caller = call->Admit()) {
    Answer(call,
           app_->ListSessions(*caller, req->page_size(), req->page_token()),
           resp);
  }
  return call;
}

ChatService::Unary* ChatService::DeleteSession(
    Context* ctx, const rwkv::v1::DeleteSessionRequest* req,
    rwkv::v1::DeleteSessionResponse* /*resp*/) {
  auto* call = new UnaryCall(ctx, env_, "DeleteSession", req->session_id());
  if (std::optional<Caller> caller = call->Admit()) {
    app_->DeleteSession(*caller, req->session_id(), call->Status());
  }
  return call;
}

ChatService::Unary* ChatService::ResetSession(
    Context* ctx, const rwkv::v1::ResetSessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  auto* call = new UnaryCall(ctx, env_, "ResetSession", req->session_id());
  if (std::optional<Caller> caller = call->Admit()) {
    app_->ResetSession(*caller, req->session_id(), call->Reply(resp));
  }
  return call;
}

ChatService::Unary* ChatService::TouchSession(
    Context* ctx, const rwkv::v1::TouchSessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  auto* call = new UnaryCall(ctx, env_, "TouchSession", req->session_id());
  if (std::optional<Caller> caller = call->Admit()) {
    app_->TouchSession(*caller, req->session_id(), req->ttl_seconds(),
                       call->Reply(resp));
  }
  return call;
}

ChatService::Unary* ChatService::ForkSession(
    Context* ctx, const rwkv::v1::ForkSessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  auto* call =
      new UnaryCall(ctx, env_, "ForkSession", req->source_session_id());
  if (std::optional<Caller> caller = call->Admit()) {
    app_->ForkSession(*caller, FromProto(*req), call->Create(resp));
  }
  return call;
}

ChatService::Unary* ChatService::BlendSessions(
    Context* ctx, const rwkv::v1::BlendSessionsRequest* req,
    rwkv::v1::SessionInfo* resp) {
  auto* call = new UnaryCall(ctx, env_, "BlendSessions", req->session_a());
  if (std::optional<Caller> caller = call->Admit()) {
    app_->BlendSessions(*caller, FromProto(*req), call->Create(resp));
  }
  return call;
}

ChatService::Unary* ChatService::DecaySession(
    Context* ctx, const rwkv::v1::DecaySessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  auto* call = new UnaryCall(ctx, env_, "DecaySession", req->session_id());
  if (std::optional<Caller> caller = call->Admit()) {
    app_->DecaySession(*caller, req->session_id(), req->factor(),
                       call->Reply(resp));
  }
  return call;
}

ChatService::Unary* ChatService::InspectSession(
    Context* ctx, const rwkv::v1::InspectSessionRequest* req,
    rwkv::v1::InspectSessionResponse* resp) {
  auto* call = new UnaryCall(ctx, env_, "InspectSession", req->session_id());
  if (std::optional<Caller> caller = call->Admit()) {
    absl::StatusOr<engine::StateReport> report =
        app_->InspectSession(*caller, req->session_id());
    if (report.ok()) ToProto(req->session_id(), *report, resp);
    call->Finish(report.status());
  }
  return call;
}

ChatService::Unary* ChatService::SessionDistance(
    Context* ctx, const rwkv::v1::SessionDistanceRequest* req,
    rwkv::v1::SessionDistanceResponse* resp) {
  auto* call = new UnaryCall(ctx, env_, "SessionDistance", req->session_a());
  if (std::optional<Caller> caller = call->Admit()) {
    Answer(call,
           app_->SessionDistance(*caller, req->session_a(), req->session_b()),
           resp);
  }
  return call;
}

ChatService::Unary* ChatService::ExportState(
    Context* ctx, const rwkv::v1::ExportStateRequest* req,
    rwkv::v1::ExportStateResponse* resp) {
  auto* call = new UnaryCall(ctx, env_, "ExportState", req->session_id());
  if (std::optional<Caller> caller = call->Admit()) {
    Answer(call, app_->ExportState(*caller, req->session_id(), req->dtype()),
           resp);
  }
  return call;
}

ChatService::Unary* ChatService::ImportState(
    Context* ctx, const rwkv::v1::ImportStateRequest* req,
    rwkv::v1::SessionInfo* resp) {
  auto* call = new UnaryCall(ctx, env_, "ImportState", req->session_id());
  if (std::optional<Caller> caller = call->Admit()) {
    // Replacing a session's state is no creation to undo.
    const bool replace = req->replace() && !req->session_id().empty();
    app_->ImportState(*caller, FromProto(*req),
                      replace ? call->Reply(resp) : call->Create(resp));
  }
  return call;
}

ChatService::Unary* ChatService::GetModelInfo(
    Context* ctx, const rwkv::v1::GetModelInfoRequest* /*req*/,
    rwkv::v1::ModelInfo* resp) {
  auto* call = new UnaryCall(ctx, env_, "GetModelInfo", "");
  if (call->Admit().has_value()) {
    Answer(call, absl::StatusOr<ModelInfo>(app_->GetModelInfo()), resp);
  }
  return call;
}

}  // namespace rwkv::server
