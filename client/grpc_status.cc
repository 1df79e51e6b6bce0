#include "client/grpc_status.h"

#include "absl/strings/str_cat.h"

namespace rwkv::client {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  int code = static_cast<int>(status.error_code());
  if (code <= 0 ||
      code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return absl::UnknownError(
        absl::StrCat("gRPC status code ", code, ": ", status.error_message()));
  }
  return absl::Status(static_cast<absl::StatusCode>(code),
                      status.error_message());
}

std::string StatusCodeName(absl::StatusCode code) {
  // absl::StatusCodeToString spells these exactly as gRPC does.
  return absl::StatusCodeToString(code);
}

std::string DescribeError(const std::string& what, const absl::Status& status) {
  return absl::StrCat(what, " failed: ", StatusCodeName(status.code()), ": ",
                      status.message());
}

}  // namespace rwkv::client
