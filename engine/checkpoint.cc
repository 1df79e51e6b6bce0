#include "engine/checkpoint.h"

#include <cstring>
#include <new>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/checkpoint_contents.h"
#include "engine/mapped_file.h"
#include "engine/parse_budget.h"
#include "engine/pth_reader.h"
#include "engine/safetensors_reader.h"

namespace rwkv::engine {
namespace {

// A node of Checkpoint::index_ (std::map<std::string, size_t>).
constexpr uint64_t kIndexNodeBytes =
    4 * sizeof(void*) + sizeof(std::pair<const std::string, size_t>) +
    ParseBudget::kAllocOverhead;

}  // namespace

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat16:
      return "float16";
    case DType::kBFloat16:
      return "bfloat16";
    case DType::kFloat64:
      return "float64";
    case DType::kInt64:
      return "int64";
    case DType::kInt32:
      return "int32";
    case DType::kInt16:
      return "int16";
    case DType::kInt8:
      return "int8";
    case DType::kUInt8:
      return "uint8";
    case DType::kBool:
      return "bool";
  }
  return "unknown";
}

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat64:
    case DType::kInt64:
      return 8;
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
    case DType::kFloat16:
    case DType::kBFloat16:
    case DType::kInt16:
      return 2;
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kBool:
      return 1;
  }
  return 0;
}

bool ShapeNumel(absl::Span<const int64_t> shape, int64_t* numel) {
  if (shape.size() > kMaxTensorDims) return false;
  int64_t n = 1;
  bool overflow = false;
  for (int64_t d : shape) {
    if (d < 0) return false;
    overflow |= __builtin_mul_overflow(n, d, &n);
  }
  // A zero dimension makes any product 0, even if an earlier one overflowed.
  for (int64_t d : shape) {
    if (d == 0) {
      *numel = 0;
      return true;
    }
  }
  if (overflow) return false;
  *numel = n;
  return true;
}

bool TensorNbytes(DType dtype, int64_t numel, size_t* nbytes) {
  const size_t esize = DTypeSize(dtype);
  if (esize == 0 || numel < 0) return false;
  return !__builtin_mul_overflow(static_cast<uint64_t>(numel), esize, nbytes);
}

std::unique_ptr<uint8_t[]> AllocateBytes(size_t n) {
  return std::unique_ptr<uint8_t[]>(new (std::nothrow) uint8_t[n == 0 ? 1 : n]);
}

const uint8_t* EmptyTensorData() {
  alignas(16) static const uint8_t kEmpty[16] = {};
  return kEmpty;
}

bool IsAlignedFor(const void* p, DType dtype) {
  const size_t a = DTypeSize(dtype);
  return a != 0 && reinterpret_cast<uintptr_t>(p) % a == 0;
}

std::string ShapeString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

std::string PrintableName(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 200)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out.push_back(c);
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(u, absl::kZeroPad2));
    }
  }
  if (s.size() > 200) out += "...";
  return out;
}

int64_t CheckpointTensor::numel() const {
  int64_t n = 0;
  return ShapeNumel(shape, &n) ? n : 0;
}

Checkpoint::Checkpoint() = default;
Checkpoint::Checkpoint(Checkpoint&&) noexcept = default;
Checkpoint& Checkpoint::operator=(Checkpoint&&) noexcept = default;
Checkpoint::~Checkpoint() = default;

absl::StatusOr<Checkpoint> Checkpoint::Open(const std::string& path) {
  return Open(path, Options());
}

absl::StatusOr<Checkpoint> Checkpoint::Open(const std::string& path,
                                            const Options& options) {
  return GuardAllocation(path, [&]() -> absl::StatusOr<Checkpoint> {
    absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path);
    if (!file.ok()) return file.status();
    return FromMapped(*std::move(file), path, options);
  });
}

absl::StatusOr<Checkpoint> Checkpoint::FromBytes(std::string bytes,
                                                 std::string_view source_name) {
  return FromBytes(std::move(bytes), source_name, Options());
}

absl::StatusOr<Checkpoint> Checkpoint::FromBytes(std::string bytes,
                                                 std::string_view source_name,
                                                 const Options& options) {
  return GuardAllocation(source_name, [&]() -> absl::StatusOr<Checkpoint> {
    return FromMapped(MappedFile::FromString(std::move(bytes)), source_name,
                      options);
  });
}

absl::StatusOr<Checkpoint> Checkpoint::FromMapped(
    std::unique_ptr<MappedFile> file, std::string_view source_name,
    const Options& options) {
  const std::string source(source_name);
  return GuardAllocation(source, [&]() -> absl::StatusOr<Checkpoint> {
    return Build(std::move(file), source, options);
  });
}

absl::StatusOr<Checkpoint> Checkpoint::Build(std::unique_ptr<MappedFile> file,
                                             const std::string& source,
                                             const Options& options) {
  const absl::Span<const uint8_t> b = file->bytes();
  ParseBudget budget = ParseBudget::ForInput(b.size());
  if (b.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": file is empty"));
  }
  absl::StatusOr<CheckpointContents> contents;
  std::string_view format;
  if (b.size() >= 4 && b[0] == 'P' && b[1] == 'K' &&
      ((b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6) ||
       (b[2] == 6 && b[3] == 6))) {
    format = "pth";
    contents = ReadPth(b, source, options.verify_checksums, &budget);
  } else if (b.size() >= 9 && b[8] == '{') {
    format = "safetensors";
    contents = ReadSafetensors(b, source, &budget);
  } else if (b.size() >= 2 && b[0] == 0x80 && b[1] <= 5) {
    return absl::InvalidArgumentError(
        absl::StrCat(source,
                     ": legacy (pre-1.6, non-zip) torch.save format is not "
                     "supported; re-save it with a current torch.save"));
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        source,
        ": unrecognized checkpoint format (expected a torch.save zip "
        "archive (.pth/.pt) or a .safetensors file)"));
  }
  if (!contents.ok()) return contents.status();

  Checkpoint ckpt;
  ckpt.source_ = source;
  ckpt.format_ = format;
  ckpt.file_ = std::move(file);
  ckpt.owned_ = std::move(contents->owned);
  ckpt.tensors_ = std::move(contents->tensors);
  ckpt.metadata_ = std::move(contents->metadata);
  for (size_t i = 0; i < ckpt.tensors_.size(); ++i) {
    if (!budget.TryCharge(
            kIndexNodeBytes +
            ParseBudget::StringBytes(ckpt.tensors_[i].name.size()))) {
      return budget.Exceeded(absl::StrCat(source, ": the index of ",
                                          ckpt.tensors_.size(), " tensors"));
    }
    if (!ckpt.index_.emplace(ckpt.tensors_[i].name, i).second) {
      return absl::DataLossError(
          absl::StrCat(source, ": duplicate tensor '",
                       PrintableName(ckpt.tensors_[i].name), "'"));
    }
  }
  return ckpt;
}

const CheckpointTensor* Checkpoint::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace rwkv::engine
