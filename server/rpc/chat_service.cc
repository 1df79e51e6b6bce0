#include "server/rpc/chat_service.h"

#include <utility>

#include "server/rpc/generate_reactor.h"
#include "server/rpc/proto_convert.h"
#include "server/rpc/unary_call.h"

namespace rwkv::server {
namespace {

// Ends `call` with a synchronous result, converted into `resp`.
template <typename T, typename Resp>
UnaryCall* Answer(UnaryCall* call, absl::StatusOr<T> result, Resp* resp) {
  if (result.ok()) ToProto(*std::move(result), resp);
  call->Finish(result.status());
  return call;
}

}  // namespace

ChatService::Unary* ChatService::CreateSession(
    Context* ctx, const rwkv::v1::CreateSessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  auto* call = new UnaryCall(ctx, app_, "CreateSession", req->session_id());
  CreateSessionRequest request = FromProto(*req);
  request.cancelled = call->Cancelled();
  app_->CreateSession(std::move(request), call->Create(resp));
  return call;
}

ChatService::Stream* ChatService::Generate(
    Context* /*ctx*/, const rwkv::v1::GenerateRequest* req) {
  auto* reactor = new GenerateReactor("Generate", req->session_id());
  app_->StartTurn(FromProto(*req), reactor->stream());
  return reactor;
}

ChatService::Stream* ChatService::Chat(Context* /*ctx*/,
                                       const rwkv::v1::ChatRequest* req) {
  auto* reactor = new GenerateReactor("Chat", req->session_id());
  app_->StartTurn(FromProto(*req), reactor->stream());
  return reactor;
}

ChatService::Unary* ChatService::GetSession(
    Context* ctx, const rwkv::v1::GetSessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  return Answer(new UnaryCall(ctx, app_, "GetSession", req->session_id()),
                app_->GetSession(req->session_id()), resp);
}

ChatService::Unary* ChatService::ListSessions(
    Context* ctx, const rwkv::v1::ListSessionsRequest* req,
    rwkv::v1::ListSessionsResponse* resp) {
  return Answer(new UnaryCall(ctx, app_, "ListSessions", ""),
                app_->ListSessions(req->page_size(), req->page_token()), resp);
}

ChatService::Unary* ChatService::DeleteSession(
    Context* ctx, const rwkv::v1::DeleteSessionRequest* req,
    rwkv::v1::DeleteSessionResponse* /*resp*/) {
  auto* call = new UnaryCall(ctx, app_, "DeleteSession", req->session_id());
  app_->DeleteSession(req->session_id(), call->Status());
  return call;
}

ChatService::Unary* ChatService::ResetSession(
    Context* ctx, const rwkv::v1::ResetSessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  auto* call = new UnaryCall(ctx, app_, "ResetSession", req->session_id());
  app_->ResetSession(req->session_id(), call->Reply(resp));
  return call;
}

ChatService::Unary* ChatService::TouchSession(
    Context* ctx, const rwkv::v1::TouchSessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  auto* call = new UnaryCall(ctx, app_, "TouchSession", req->session_id());
  app_->TouchSession(req->session_id(), req->ttl_seconds(), call->Reply(resp));
  return call;
}

ChatService::Unary* ChatService::ForkSession(
    Context* ctx, const rwkv::v1::ForkSessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  auto* call =
      new UnaryCall(ctx, app_, "ForkSession", req->source_session_id());
  app_->ForkSession(FromProto(*req), call->Create(resp));
  return call;
}

ChatService::Unary* ChatService::BlendSessions(
    Context* ctx, const rwkv::v1::BlendSessionsRequest* req,
    rwkv::v1::SessionInfo* resp) {
  auto* call = new UnaryCall(ctx, app_, "BlendSessions", req->session_a());
  app_->BlendSessions(FromProto(*req), call->Create(resp));
  return call;
}

ChatService::Unary* ChatService::DecaySession(
    Context* ctx, const rwkv::v1::DecaySessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  auto* call = new UnaryCall(ctx, app_, "DecaySession", req->session_id());
  app_->DecaySession(req->session_id(), req->factor(), call->Reply(resp));
  return call;
}

ChatService::Unary* ChatService::InspectSession(
    Context* ctx, const rwkv::v1::InspectSessionRequest* req,
    rwkv::v1::InspectSessionResponse* resp) {
  auto* call = new UnaryCall(ctx, app_, "InspectSession", req->session_id());
  absl::StatusOr<engine::StateReport> report =
      app_->InspectSession(req->session_id());
  if (report.ok()) ToProto(req->session_id(), *report, resp);
  call->Finish(report.status());
  return call;
}

ChatService::Unary* ChatService::SessionDistance(
    Context* ctx, const rwkv::v1::SessionDistanceRequest* req,
    rwkv::v1::SessionDistanceResponse* resp) {
  return Answer(new UnaryCall(ctx, app_, "SessionDistance", req->session_a()),
                app_->SessionDistance(req->session_a(), req->session_b()),
                resp);
}

ChatService::Unary* ChatService::ExportState(
    Context* ctx, const rwkv::v1::ExportStateRequest* req,
    rwkv::v1::ExportStateResponse* resp) {
  return Answer(new UnaryCall(ctx, app_, "ExportState", req->session_id()),
                app_->ExportState(req->session_id(), req->dtype()), resp);
}

ChatService::Unary* ChatService::ImportState(
    Context* ctx, const rwkv::v1::ImportStateRequest* req,
    rwkv::v1::SessionInfo* resp) {
  auto* call = new UnaryCall(ctx, app_, "ImportState", req->session_id());
  // Replacing a session's state is no creation to undo.
  const bool replace = req->replace() && !req->session_id().empty();
  app_->ImportState(FromProto(*req),
                    replace ? call->Reply(resp) : call->Create(resp));
  return call;
}

ChatService::Unary* ChatService::GetModelInfo(
    Context* ctx, const rwkv::v1::GetModelInfoRequest* /*req*/,
    rwkv::v1::ModelInfo* resp) {
  return Answer(new UnaryCall(ctx, app_, "GetModelInfo", ""),
                absl::StatusOr<ModelInfo>(app_->GetModelInfo()), resp);
}

}  // namespace rwkv::server
