// Integer lists given as one flag value: "1,2,3" (spaces allowed, empty
// items skipped), e.g. rwkv-cli --tokens and rwkv-bench --batches.
#ifndef RWKV_COMMON_ID_LIST_H_
#define RWKV_COMMON_ID_LIST_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rwkv::common {

// Errors (INVALID_ARGUMENT) name the bad item and `flag`.
absl::StatusOr<std::vector<int32_t>> ParseIdList(absl::string_view text,
                                                 absl::string_view flag);

}  // namespace rwkv::common

#endif  // RWKV_COMMON_ID_LIST_H_
