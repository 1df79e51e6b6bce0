// PickleReader: a minimal, safe pickle virtual machine for what torch.save
// and LibTorch's torch::pickle_save write. It never executes anything: only
// a whitelist of globals (collections.OrderedDict, torch tensor/storage
// rebuild functions and storage types) is recognised and interpreted here;
// any other global is an error naming it. Immutable after Parse; safe for
// concurrent const use.
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
  // Most objects one pickle may create (bounds memory on hostile input).
  static constexpr size_t kMaxValues = size_t{1} << 24;

  // Runs the pickle in `bytes` up to its STOP opcode. `context` prefixes
  // error messages (e.g. "model.pth: archive/data.pkl"). InvalidArgument for
  // a disallowed global or an unsupported construct, DataLoss for malformed
  // or truncated data.
  static absl::StatusOr<std::unique_ptr<PickleReader>> Parse(
      absl::Span<const uint8_t> bytes, std::string_view context);

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

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_PICKLE_READER_H_
