// Conversion of gRPC statuses into absl::Status for the client library.
//
// Every ChatClient call returns absl::Status / absl::StatusOr. gRPC and Abseil
// share the canonical code numbers (absl/status/status.h names the gRPC code
// for each), so the conversion keeps the code and the server's message
// unchanged; callers print `status.ToString()` ("NOT_FOUND: session ...").
#ifndef RWKV_CLIENT_GRPC_STATUS_H_
#define RWKV_CLIENT_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace rwkv::client {

// The absl::Status with the same code and message as `status`. Codes outside
// the canonical range (never sent by conforming servers) become UNKNOWN with
// the original number in the message.
absl::Status FromGrpcStatus(const grpc::Status& status);

// The upper-case canonical name of `code` ("NOT_FOUND"), as gRPC spells it.
std::string StatusCodeName(absl::StatusCode code);

// One line for humans: "<what> failed: NOT_FOUND: <message>".
std::string DescribeError(const std::string& what, const absl::Status& status);

}  // namespace rwkv::client

#endif  // RWKV_CLIENT_GRPC_STATUS_H_
