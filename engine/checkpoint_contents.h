// CheckpointContents: what a format reader (pth_reader, safetensors_reader)
// hands to Checkpoint, plus the overflow-checked size helpers they share.
// Plain data and pure functions; no shared state.
#ifndef RWKV_ENGINE_CHECKPOINT_CONTENTS_H_
#define RWKV_ENGINE_CHECKPOINT_CONTENTS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/types/span.h"
#include "engine/checkpoint.h"

namespace rwkv::engine {

struct CheckpointContents {
  // data points into the bytes given to the reader or into `owned`.
  std::vector<CheckpointTensor> tensors;
  std::vector<std::unique_ptr<uint8_t[]>> owned;
  std::map<std::string, std::string> metadata;
};

// Most dimensions a tensor may have.
inline constexpr size_t kMaxTensorDims = 64;

// Product of `shape`; false if a dimension is negative, there are more than
// kMaxTensorDims dimensions, or the product overflows int64.
bool ShapeNumel(absl::Span<const int64_t> shape, int64_t* numel);

// numel * DTypeSize(dtype); false on overflow or an invalid dtype.
bool TensorNbytes(DType dtype, int64_t numel, size_t* nbytes);

// Uninitialised buffer of n bytes (n may be 0); nullptr if the allocation
// fails. Never throws.
std::unique_ptr<uint8_t[]> AllocateBytes(size_t n);

// A valid, suitably aligned pointer for tensors with no elements.
const uint8_t* EmptyTensorData();

// True if p is aligned to DTypeSize(dtype).
bool IsAlignedFor(const void* p, DType dtype);

// "[2, 3]".
std::string ShapeString(absl::Span<const int64_t> shape);

// A name from a file, safe to put in a message: printable ASCII kept, other
// bytes as \xNN, cut after 200 characters ("...").
std::string PrintableName(std::string_view s);

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_CHECKPOINT_CONTENTS_H_
