#include "engine/pickle_writer.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace rwkv::engine {
namespace {

void PutLe(std::string* out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

}  // namespace

PickleWriter::PickleWriter() { out_ = "\x80\x02"; }

void PickleWriter::Memoize() {
  const uint32_t index = next_memo_++;
  if (index < 256) {
    out_.push_back('q');
    PutLe(&out_, index, 1);
  } else {
    out_.push_back('r');
    PutLe(&out_, index, 4);
  }
}

void PickleWriter::Get(uint32_t index) {
  if (index < 256) {
    out_.push_back('h');
    PutLe(&out_, index, 1);
  } else {
    out_.push_back('j');
    PutLe(&out_, index, 4);
  }
}

void PickleWriter::EmptyDict() {
  out_.push_back('}');
  Memoize();
}

void PickleWriter::EmptyList() {
  out_.push_back(']');
  Memoize();
}

void PickleWriter::Append() { out_.push_back('a'); }
void PickleWriter::Appends() { out_.push_back('e'); }
void PickleWriter::Build() { out_.push_back('b'); }

void PickleWriter::Mark() { out_.push_back('('); }
void PickleWriter::SetItem() { out_.push_back('s'); }
void PickleWriter::SetItems() { out_.push_back('u'); }

void PickleWriter::BeginTuple(size_t n) {
  if (n > 3) Mark();
}

void PickleWriter::EndTuple(size_t n) {
  switch (n) {
    case 0:
      out_.push_back(')');
      return;
    case 1:
      out_.push_back('\x85');
      break;
    case 2:
      out_.push_back('\x86');
      break;
    case 3:
      out_.push_back('\x87');
      break;
    default:
      out_.push_back('t');
  }
  Memoize();
}

void PickleWriter::IntTuple(absl::Span<const int64_t> values) {
  BeginTuple(values.size());
  for (int64_t v : values) Int(v);
  EndTuple(values.size());
}

void PickleWriter::String(std::string_view s) {
  out_.push_back('X');
  PutLe(&out_, s.size(), 4);
  out_.append(s);
  Memoize();
}

void PickleWriter::SharedString(std::string_view s) {
  const std::string key = "s:" + std::string(s);
  auto it = shared_.find(key);
  if (it != shared_.end()) {
    Get(it->second);
    return;
  }
  shared_.emplace(key, next_memo_);
  String(s);
}

void PickleWriter::Int(int64_t v) {
  if (v >= 0 && v <= 0xFF) {
    out_.push_back('K');
    PutLe(&out_, v, 1);
  } else if (v >= 0 && v <= 0xFFFF) {
    out_.push_back('M');
    PutLe(&out_, v, 2);
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    out_.push_back('J');
    PutLe(&out_, static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
  } else {
    // LONG1: minimal two's complement, as pickle.encode_long.
    unsigned char bytes[8];
    uint64_t u = static_cast<uint64_t>(v);
    for (int i = 0; i < 8; ++i)
      bytes[i] = static_cast<unsigned char>(u >> (8 * i));
    int n = 8;
    while (n > 1) {
      const unsigned char top = bytes[n - 1];
      const bool next_negative = (bytes[n - 2] & 0x80) != 0;
      if ((top == 0x00 && !next_negative) || (top == 0xFF && next_negative)) {
        --n;
      } else {
        break;
      }
    }
    out_.push_back('\x8a');
    out_.push_back(static_cast<char>(n));
    out_.append(reinterpret_cast<const char*>(bytes), n);
  }
}

void PickleWriter::Float(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  out_.push_back('G');
  for (int i = 7; i >= 0; --i)
    out_.push_back(static_cast<char>(bits >> (8 * i)));
}

void PickleWriter::Bool(bool v) { out_.push_back(v ? '\x88' : '\x89'); }
void PickleWriter::None() { out_.push_back('N'); }

void PickleWriter::Global(std::string_view module, std::string_view name) {
  const std::string key = "g:" + std::string(module) + "\n" + std::string(name);
  auto it = shared_.find(key);
  if (it != shared_.end()) {
    Get(it->second);
    return;
  }
  out_.push_back('c');
  out_.append(module).append("\n").append(name).append("\n");
  shared_.emplace(key, next_memo_);
  Memoize();
}

void PickleWriter::Reduce() {
  out_.push_back('R');
  Memoize();
}

void PickleWriter::BinPersId() { out_.push_back('Q'); }

void PickleWriter::Tensor(std::string_view storage_type, std::string_view key,
                          int64_t storage_numel, int64_t offset,
                          absl::Span<const int64_t> shape,
                          absl::Span<const int64_t> stride) {
  Global("torch._utils", "_rebuild_tensor_v2");
  BeginTuple(6);
  {
    BeginTuple(5);
    SharedString("storage");
    Global("torch", storage_type);
    String(key);
    SharedString("cpu");
    Int(storage_numel);
    EndTuple(5);
    BinPersId();
  }
  Int(offset);
  IntTuple(shape);
  IntTuple(stride);
  Bool(false);
  Global("collections", "OrderedDict");
  EndTuple(0);
  Reduce();
  EndTuple(6);
  Reduce();
}

std::string PickleWriter::Finish() {
  out_.push_back('.');
  return std::move(out_);
}

}  // namespace rwkv::engine
