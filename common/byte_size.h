// Byte counts as people write them on command lines and in config files:
// "4096", "512K", "256M", "2G" (K/M/G = 2^10/2^20/2^30, either case). Used by
// rwkv-server's --max-state-bytes and --prefix-cache-bytes.
#ifndef RWKV_COMMON_BYTE_SIZE_H_
#define RWKV_COMMON_BYTE_SIZE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rwkv::common {

// The largest count ParseByteSize accepts (1 PiB): far above any memory
// bound, and small enough that callers can add and multiply without
// overflow.
inline constexpr int64_t kMaxByteSize = int64_t{1} << 50;

// Parses a non-negative count with an optional K/M/G suffix. Errors
// (INVALID_ARGUMENT) read "expected a byte count like 512M, got '...'".
absl::StatusOr<int64_t> ParseByteSize(absl::string_view text);

// The shortest form ParseByteSize reads back exactly: 268435456 -> "256M",
// 1536 -> "1536", 0 -> "0". REQUIRES: bytes >= 0.
std::string FormatByteSize(int64_t bytes);

}  // namespace rwkv::common

#endif  // RWKV_COMMON_BYTE_SIZE_H_
