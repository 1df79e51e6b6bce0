// Status helpers at the server's edges: absl::Status -> grpc::Status (the
// canonical codes have the same numbers), and RWKV_RETURN_IF_ERROR (Abseil
// 20220623 has no public one).
#ifndef RWKV_SERVER_STATUS_UTIL_H_
#define RWKV_SERVER_STATUS_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace rwkv::server {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace rwkv::server

#define RWKV_RETURN_IF_ERROR(expr)                                  \
  do {                                                              \
    if (::absl::Status _rwkv_status = (expr); !_rwkv_status.ok()) { \
      return _rwkv_status;                                          \
    }                                                               \
  } while (false)

#endif  // RWKV_SERVER_STATUS_UTIL_H_
