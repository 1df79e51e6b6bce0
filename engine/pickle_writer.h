// PickleWriter: emits pickle protocol 2 the way CPython's Pickler does for
// the objects torch.save writes (same opcodes, same memo indices), so a
// state dict serialized here is byte-identical to Python's. Not thread-safe.
#ifndef RWKV_ENGINE_PICKLE_WRITER_H_
#define RWKV_ENGINE_PICKLE_WRITER_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/types/span.h"

namespace rwkv::engine {

class PickleWriter {
 public:
  PickleWriter();  // writes PROTO 2

  // Containers. A tuple of n elements: BeginTuple(n), the n elements,
  // EndTuple(n) (MARK ... TUPLE for n > 3, TUPLE1/2/3, EMPTY_TUPLE for 0).
  void EmptyDict();  // memoized
  void EmptyList();  // memoized
  void Append();
  void Appends();
  void Build();
  void Mark();
  void SetItem();
  void SetItems();
  void BeginTuple(size_t n);
  void EndTuple(size_t n);  // memoized unless empty
  void IntTuple(absl::Span<const int64_t> values);

  // Scalars. String() is a new str object each call (memoized); SharedString
  // is one object per distinct value (an interned literal: BINGET after the
  // first use). Ints use the shortest of BININT1/BININT2/BININT/LONG1.
  void String(std::string_view s);
  void SharedString(std::string_view s);
  void Int(int64_t v);
  void Float(double v);
  void Bool(bool v);
  void None();

  // A global (GLOBAL on first use, memoized; BINGET later).
  void Global(std::string_view module, std::string_view name);
  void Reduce();     // memoized result
  void BinPersId();  // persistent load of the tuple on the stack

  // torch._utils._rebuild_tensor_v2((storage pid), offset, shape, stride,
  // False, OrderedDict()) with persistent id ('storage', torch.<type>, key,
  // 'cpu', storage_numel), as torch.save writes a tensor.
  void Tensor(std::string_view storage_type, std::string_view key,
              int64_t storage_numel, int64_t offset,
              absl::Span<const int64_t> shape,
              absl::Span<const int64_t> stride);

  // Writes STOP and returns the pickle.
  std::string Finish();

 private:
  void Memoize();
  void Get(uint32_t index);

  std::string out_;
  uint32_t next_memo_ = 0;
  std::map<std::string, uint32_t, std::less<>> shared_;  // globals, literals
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_PICKLE_WRITER_H_
