// ToGrpcStatus: absl::Status -> grpc::Status at the gRPC edge (the canonical
// codes have the same numbers). Messages are bounded (kMaxStatusMessageBytes,
// longer ones are cut with their length noted), so no error can grow the
// trailing metadata past what a default client accepts.
#ifndef RWKV_SERVER_RPC_STATUS_UTIL_H_
#define RWKV_SERVER_RPC_STATUS_UTIL_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/support/status.h"

namespace rwkv::server {

inline constexpr size_t kMaxStatusMessageBytes = 1024;

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  std::string message(status.message());
  if (message.size() > kMaxStatusMessageBytes) {
    message = absl::StrCat(message.substr(0, kMaxStatusMessageBytes),
                           "... (message of ", message.size(), " bytes cut)");
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message);
}

}  // namespace rwkv::server

#endif  // RWKV_SERVER_RPC_STATUS_UTIL_H_
