// ChatService: the rwkv.v1.ChatService implementation (gRPC callback API).
// One thin handler per RPC: the proto request becomes an application-layer
// request (proto_convert.h), ChatApp does the work, and the reactor ends the
// call with the result; no handler waits for the engine or the disk. Every
// call is admitted first (the reactors' Admit(): UNAVAILABLE once shutdown
// has begun, then the API key -> Caller, UNAUTHENTICATED without a valid
// one); the standard health service is a separate service and stays public.
// Thread-safe. Borrows what `env` points to, which must outlive it.
#ifndef RWKV_SERVER_RPC_CHAT_SERVICE_H_
#define RWKV_SERVER_RPC_CHAT_SERVICE_H_

#include "rwkv/v1/chat.grpc.pb.h"
#include "server/app/chat_app.h"
#include "server/rpc/rpc_env.h"

namespace rwkv::server {

class ChatService final : public rwkv::v1::ChatService::CallbackService {
 public:
  explicit ChatService(RpcEnv env) : env_(env), app_(env.app) {}

  using Context = grpc::CallbackServerContext;
  using Unary = grpc::ServerUnaryReactor;
  using Stream = grpc::ServerWriteReactor<rwkv::v1::GenerateResponse>;

  Unary* CreateSession(Context* ctx, const rwkv::v1::CreateSessionRequest* req,
                       rwkv::v1::SessionInfo* resp) override;
  Stream* Generate(Context* ctx, const rwkv::v1::GenerateRequest* req) override;
  Stream* Chat(Context* ctx, const rwkv::v1::ChatRequest* req) override;
  Unary* GetSession(Context* ctx, const rwkv::v1::GetSessionRequest* req,
                    rwkv::v1::SessionInfo* resp) override;
  Unary* ListSessions(Context* ctx, const rwkv::v1::ListSessionsRequest* req,
                      rwkv::v1::ListSessionsResponse* resp) override;
  Unary* DeleteSession(Context* ctx, const rwkv::v1::DeleteSessionRequest* req,
                       rwkv::v1::DeleteSessionResponse* resp) override;
  Unary* ResetSession(Context* ctx, const rwkv::v1::ResetSessionRequest* req,
                      rwkv::v1::SessionInfo* resp) override;
  Unary* TouchSession(Context* ctx, const rwkv::v1::TouchSessionRequest* req,
                      rwkv::v1::SessionInfo* resp) override;
  Unary* ForkSession(Context* ctx, const rwkv::v1::ForkSessionRequest* req,
                     rwkv::v1::SessionInfo* resp) override;
  Unary* BlendSessions(Context* ctx, const rwkv::v1::BlendSessionsRequest* req,
                       rwkv::v1::SessionInfo* resp) override;
  Unary* DecaySession(Context* ctx, const rwkv::v1::DecaySessionRequest* req,
                      rwkv::v1::SessionInfo* resp) override;
  Unary* InspectSession(Context* ctx,
                        const rwkv::v1::InspectSessionRequest* req,
                        rwkv::v1::InspectSessionResponse* resp) override;
  Unary* SessionDistance(Context* ctx,
                         const rwkv::v1::SessionDistanceRequest* req,
                         rwkv::v1::SessionDistanceResponse* resp) override;
  Unary* ExportState(Context* ctx, const rwkv::v1::ExportStateRequest* req,
                     rwkv::v1::ExportStateResponse* resp) override;
  Unary* ImportState(Context* ctx, const rwkv::v1::ImportStateRequest* req,
                     rwkv::v1::SessionInfo* resp) override;
  Unary* GetModelInfo(Context* ctx, const rwkv::v1::GetModelInfoRequest* req,
                      rwkv::v1::ModelInfo* resp) override;

 private:
  const RpcEnv env_;
  ChatApp* const app_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_RPC_CHAT_SERVICE_H_
