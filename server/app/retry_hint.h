// Retry hints on RESOURCE_EXHAUSTED statuses: how many seconds a client
// should wait before retrying, carried as a status payload so each front can
// say it its own way (gRPC trailing metadata `retry-after`, HTTP
// `Retry-After`); the message says it in words too.
#ifndef RWKV_SERVER_APP_RETRY_HINT_H_
#define RWKV_SERVER_APP_RETRY_HINT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/types/optional.h"

namespace rwkv::server {

inline constexpr char kRetryAfterPayload[] = "rwkv.v1/retry-after-seconds";

// `status` with a retry hint of `seconds` (at least 1).
inline absl::Status WithRetryAfter(absl::Status status, int64_t seconds) {
  if (seconds < 1) seconds = 1;
  status.SetPayload(kRetryAfterPayload, absl::Cord(std::to_string(seconds)));
  return status;
}

// The hint, if the status carries one.
inline std::optional<int64_t> RetryHintSeconds(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kRetryAfterPayload);
  int64_t seconds = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &seconds)) {
    return std::nullopt;
  }
  return seconds;
}

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_RETRY_HINT_H_
