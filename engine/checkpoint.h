// Checkpoint: the tensors of a .pth (torch.save zip archive) or .safetensors
// file, read without LibTorch. Immutable after Open/FromBytes; all const
// methods are safe to call from many threads at once.
#ifndef RWKV_ENGINE_CHECKPOINT_H_
#define RWKV_ENGINE_CHECKPOINT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace rwkv::engine {

class MappedFile;

// Element types a checkpoint tensor can have (little-endian in memory).
enum class DType : uint8_t {
  kFloat32,
  kFloat16,
  kBFloat16,
  kFloat64,
  kInt64,
  kInt32,
  kInt16,
  kInt8,
  kUInt8,
  kBool,
};

// "float32", "float16", "bfloat16", "float64", "int64", "int32", "int16",
// "int8", "uint8", "bool" (the torch names); "unknown" for other values.
std::string_view DTypeName(DType dtype);

// Bytes per element (1 for kBool); 0 for values outside the enum.
size_t DTypeSize(DType dtype);

struct CheckpointTensor {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;  // empty for a 0-dim (scalar) tensor
  // Contiguous row-major bytes, aligned to at least DTypeSize(dtype); never
  // null (a tensor with no elements points at a valid empty buffer). Valid
  // while the Checkpoint that owns it lives (moving the Checkpoint keeps it).
  const uint8_t* data = nullptr;
  size_t nbytes = 0;  // numel() * DTypeSize(dtype)

  int64_t numel() const;
};

class Checkpoint {
 public:
  struct Options {
    // Checks the CRC32 of every zip record that is read (.pth). data.pkl is
    // always checked; tensor data only when this is set (it reads every
    // byte of a possibly multi-GB file).
    bool verify_checksums = false;
  };

  // Reads a .pth (torch.save zip format, also LibTorch's torch::pickle_save)
  // or .safetensors file. The format is detected from the content. The file
  // is memory-mapped read-only: tensor data points into the mapping when it
  // is contiguous and aligned, and is copied otherwise (strided views,
  // misaligned records). Errors name the file and the problem: NotFound for
  // a missing file, InvalidArgument for an unsupported but well-formed file,
  // DataLoss for a corrupt or truncated one. What parsing builds besides the
  // file's bytes (directory, pickle objects, names, index, copies) is held
  // to ParseBudget::ForInput(file size), 4 x the file's size + 4 MiB: a file
  // that needs more is refused (InvalidArgument naming what it was
  // building); an allocation failure is ResourceExhausted, never an
  // exception.
  static absl::StatusOr<Checkpoint> Open(const std::string& path);
  static absl::StatusOr<Checkpoint> Open(const std::string& path,
                                         const Options& options);

  // Same as Open for bytes already in memory; `source_name` is what error
  // messages and source() call it.
  static absl::StatusOr<Checkpoint> FromBytes(std::string bytes,
                                              std::string_view source_name);
  static absl::StatusOr<Checkpoint> FromBytes(std::string bytes,
                                              std::string_view source_name,
                                              const Options& options);

  Checkpoint(Checkpoint&&) noexcept;
  Checkpoint& operator=(Checkpoint&&) noexcept;
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;
  ~Checkpoint();

  // In file order (.pth: the pickled dict's order, nested dicts flattened
  // with '.'-joined names; .safetensors: the header's order).
  const std::vector<CheckpointTensor>& tensors() const { return tensors_; }

  // nullptr if there is no tensor of that name.
  const CheckpointTensor* Find(std::string_view name) const;

  // .safetensors: the header's __metadata__. .pth: the dict's entries that
  // are str, int, float, bool or None, as Python's str() prints them
  // ("12", "0.5", "True", "None"); nested names '.'-joined like tensors.
  const std::map<std::string, std::string>& metadata() const {
    return metadata_;
  }

  std::string_view format() const { return format_; }  // "pth"|"safetensors"
  const std::string& source() const { return source_; }

 private:
  Checkpoint();

  static absl::StatusOr<Checkpoint> FromMapped(std::unique_ptr<MappedFile> file,
                                               std::string_view source,
                                               const Options& options);
  static absl::StatusOr<Checkpoint> Build(std::unique_ptr<MappedFile> file,
                                          const std::string& source,
                                          const Options& options);

  std::string source_;
  std::string_view format_;
  std::unique_ptr<MappedFile> file_;
  std::vector<std::unique_ptr<uint8_t[]>> owned_;  // copied tensor data
  std::vector<CheckpointTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_CHECKPOINT_H_
