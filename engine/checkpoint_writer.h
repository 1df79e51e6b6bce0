// Writers for checkpoint files Python can read: SerializePth (what
// torch.save writes, loadable with torch.load), SerializeSafetensors, and
// WriteFileAtomically. Pure functions of their arguments; thread-safe.
#ifndef RWKV_ENGINE_CHECKPOINT_WRITER_H_
#define RWKV_ENGINE_CHECKPOINT_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/checkpoint.h"

namespace rwkv::engine {

struct TensorToWrite {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // contiguous row-major, nbytes long
  size_t nbytes = 0;           // must equal numel * DTypeSize(dtype)
};

// A non-tensor dict entry of a .pth file (Python str, int, float, bool).
// Note: construct strings as std::string, not from a char literal.
struct ScalarToWrite {
  std::string name;
  std::variant<std::string, int64_t, double, bool> value;
};

// The bytes torch.save(d, f) writes (torch 1.13 zip format) for the plain
// dict d = {tensor names: tensors (each with its own storage), then scalar
// names: values}, in order. `archive_name` is the zip's folder (torch.save
// uses the file name's stem; "archive" for a buffer). Byte-identical to
// Python's output for contiguous tensors. InvalidArgument for a duplicate or
// empty name, a size mismatch or a null data pointer.
absl::StatusOr<std::string> SerializePth(
    absl::Span<const TensorToWrite> tensors,
    absl::Span<const ScalarToWrite> scalars = {},
    std::string_view archive_name = "archive");

// A .safetensors file: JSON header (with __metadata__ if non-empty) padded
// with spaces to a multiple of 8 bytes, then the tensors' bytes in order.
// InvalidArgument for a duplicate name, "__metadata__" as a tensor name,
// invalid UTF-8 in a name, or a size mismatch.
absl::StatusOr<std::string> SerializeSafetensors(
    absl::Span<const TensorToWrite> tensors,
    const std::map<std::string, std::string>& metadata = {});

// Writes `bytes` to a temporary file next to `path`, fsyncs it and renames
// it over `path`, so readers see the old or the new file, never a partial
// one. The message names the path and the OS error.
absl::Status WriteFileAtomically(const std::string& path,
                                 std::string_view bytes);

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_CHECKPOINT_WRITER_H_
