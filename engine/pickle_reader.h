// PickleReader: a minimal, safe pickle virtual machine for what torch.save
// and LibTorch's torch::pickle_save write. It never executes anything: only
// a whitelist of globals (collections.OrderedDict, torch tensor/storage
// rebuild functions and storage types) is recognised and interpreted here;
// any other global is an error naming it. Everything the machine builds
// (objects, strings, containers, its stack and memo) is charged to a
// ParseBudget before it is allocated, so a pickle holds memory in proportion
// to its bytes however it shares and copies objects. Immutable after Parse;
// safe for concurrent const use.
#ifndef RWKV_ENGINE_PICKLE_READER_H_
#define RWKV_ENGINE_PICKLE_READER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/checkpoint.h"
#include "engine/parse_budget.h"

namespace rwkv::engine {

// One unpickled object. Objects are owned by the PickleReader and may be
// shared (memo references), so the graph can be a DAG or even cyclic.
struct PickleValue {
  enum class Kind : uint8_t {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,  // str (and Python 2 str)
    kBytes,
    kTuple,
    kList,
    kDict,     // dict or OrderedDict, in insertion order (keys may repeat)
    kGlobal,   // a whitelisted global; `str` is "module.name"
    kStorage,  // a persistent-id storage reference
    kTensor,   // result of torch._utils._rebuild_tensor(_v2)
  };
  // What a kGlobal refers to.
  enum class Global : uint8_t {
    kOrderedDict,
    kRebuildTensor,
    kRebuildTensorV2,
    kRebuildParameter,
    kRestoreTypeTag,  // torch.jit._pickle.restore_type_tag
    kBuildList,       // torch.jit._pickle.build_{int,float,bool,...}list
    kStorageType,     // torch.FloatStorage etc.; `dtype` says which
  };

  Kind kind = Kind::kNone;
  Global global = Global::kOrderedDict;  // kGlobal
  DType dtype = DType::kFloat32;         // kStorage, kGlobal kStorageType
  bool bool_value = false;               // kBool
  int64_t int_value = 0;   // kInt; kStorage: numel; kTensor: storage offset
  double float_value = 0;  // kFloat
  // kString/kBytes: the bytes; kGlobal: "module.name"; kStorage: the key.
  std::string str;
  // kTuple/kList: elements; kDict: key0, value0, key1, value1, ...;
  // kTensor: {storage}.
  std::vector<PickleValue*> items;
  std::vector<int64_t> dims;  // kTensor: shape, then stride (2 * ndim)

  // Tensor accessors (kind == kTensor).
  const PickleValue& storage() const { return *items[0]; }
  absl::Span<const int64_t> shape() const {
    return absl::MakeConstSpan(dims).first(dims.size() / 2);
  }
  absl::Span<const int64_t> stride() const {
    return absl::MakeConstSpan(dims).subspan(dims.size() / 2);
  }
};

const char* PickleKindName(PickleValue::Kind kind);

class PickleReader {
 public:
  // Most objects one pickle may create (the budget usually stops far
  // earlier: each object costs bytes_per_value() of it).
  static constexpr size_t kMaxValues = size_t{1} << 24;

  // Runs the pickle in `bytes` up to its STOP opcode. `context` prefixes
  // error messages (e.g. "model.pth: archive/data.pkl"). What it builds is
  // charged to `budget` (the caller's, e.g. one for a whole checkpoint; null:
  // ParseBudget::ForInput(bytes.size())). InvalidArgument for a disallowed
  // global, an unsupported construct or a spent budget, DataLoss for
  // malformed or truncated data, ResourceExhausted if an allocation fails.
  static absl::StatusOr<std::unique_ptr<PickleReader>> Parse(
      absl::Span<const uint8_t> bytes, std::string_view context,
      ParseBudget* budget = nullptr);

  // What one object costs the budget (its slot in the reader's storage).
  static constexpr uint64_t bytes_per_value();

  PickleReader(const PickleReader&) = delete;
  PickleReader& operator=(const PickleReader&) = delete;

  const PickleValue& root() const { return *root_; }
  size_t num_values() const { return values_.size(); }

 private:
  class Machine;
  PickleReader() = default;

  std::deque<PickleValue> values_;
  const PickleValue* root_ = nullptr;
};

constexpr uint64_t PickleReader::bytes_per_value() {
  // libstdc++'s deque stores max(1, 512 / sizeof) objects per block, and
  // keeps a map of block pointers that grows by doubling.
  constexpr uint64_t per_block =
      sizeof(PickleValue) < 512 ? 512 / sizeof(PickleValue) : 1;
  return sizeof(PickleValue) +
         (ParseBudget::kAllocOverhead + 2 * sizeof(void*) + per_block - 1) /
             per_block;
}

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_PICKLE_READER_H_
