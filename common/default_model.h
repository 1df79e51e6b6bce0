// The model used when a program is given no --model: the demo model the
// project trains itself and commits (models/demo/rwkv4-demo.pth), so the
// README's commands work on a fresh machine with no download.
#ifndef RWKV_COMMON_DEFAULT_MODEL_H_
#define RWKV_COMMON_DEFAULT_MODEL_H_

#include <string>

#include "absl/status/statusor.h"

namespace rwkv::common {

// Repository-relative path of the demo model.
inline constexpr char kDemoModelRelPath[] = "models/demo/rwkv4-demo.pth";

// The first existing file of: $RWKV_MODEL; the demo model in the source tree
// this binary was built from; the demo model relative to the executable
// (<exe dir>/../.., <exe dir>/.., <exe dir>/../share/rwkv). NotFound (naming
// where it looked) if none exists.
absl::StatusOr<std::string> DefaultModelPath();

}  // namespace rwkv::common

#endif  // RWKV_COMMON_DEFAULT_MODEL_H_
