// RpcEnv: what every gRPC call's reactor needs besides its request: the
// application layer, the authenticator (API keys -> Caller) and the call
// gate (shutdown). CallerOf() reads the caller from the call's
// `authorization` metadata. All borrowed; they outlive the gRPC server.
#ifndef RWKV_SERVER_RPC_RPC_ENV_H_
#define RWKV_SERVER_RPC_RPC_ENV_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"
#include "server/app/call_gate.h"
#include "server/app/chat_app.h"
#include "server/auth/authenticator.h"

namespace rwkv::server {

struct RpcEnv {
  ChatApp* app = nullptr;
  const Authenticator* auth = nullptr;
  CallGate* gate = nullptr;
};

inline absl::StatusOr<Caller> CallerOf(const RpcEnv& env,
                                       const grpc::ServerContextBase& ctx) {
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  absl::string_view value;
  if (it != md.end())
    value = absl::string_view(it->second.data(), it->second.size());
  return env.auth->Authenticate(value);
}

}  // namespace rwkv::server

#endif  // RWKV_SERVER_RPC_RPC_ENV_H_
