#include "engine/pickle_reader.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/checkpoint_contents.h"

namespace rwkv::engine {
namespace {

using Kind = PickleValue::Kind;
using Global = PickleValue::Global;

constexpr size_t kMaxStack = size_t{1} << 22;  // values + marks
constexpr size_t kMaxLine = 1024;              // GLOBAL / INT text lines

struct StorageTypeName {
  const char* name;
  DType dtype;
};
constexpr StorageTypeName kStorageTypes[] = {
    {"FloatStorage", DType::kFloat32},     {"HalfStorage", DType::kFloat16},
    {"BFloat16Storage", DType::kBFloat16}, {"DoubleStorage", DType::kFloat64},
    {"LongStorage", DType::kInt64},        {"IntStorage", DType::kInt32},
    {"ShortStorage", DType::kInt16},       {"CharStorage", DType::kInt8},
    {"ByteStorage", DType::kUInt8},        {"BoolStorage", DType::kBool},
};

}  // namespace

const char* PickleKindName(PickleValue::Kind kind) {
  switch (kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kGlobal:
      return "global";
    case Kind::kStorage:
      return "storage";
    case Kind::kTensor:
      return "tensor";
  }
  return "unknown";
}

class PickleReader::Machine {
 public:
  Machine(absl::Span<const uint8_t> bytes, std::string_view context,
          PickleReader* out, ParseBudget* budget)
      : data_(bytes.data()),
        size_(bytes.size()),
        context_(context),
        out_(out),
        budget_(budget) {}

  absl::Status Run();

 private:
  // Error at the opcode being executed.
  template <typename... Args>
  absl::Status Loss(const Args&... args) const {
    return absl::DataLossError(
        absl::StrCat(context_, ": pickle offset ", op_pos_, ": ", args...));
  }
  template <typename... Args>
  absl::Status Unsupported(const Args&... args) const {
    return absl::InvalidArgumentError(
        absl::StrCat(context_, ": pickle offset ", op_pos_, ": ", args...));
  }

  // InvalidArgument: building `what` would pass the budget.
  absl::Status OverBudget(std::string_view what) const {
    return Unsupported(budget_->Exceeded(what).message());
  }
  absl::Status Charge(uint64_t bytes, std::string_view what) {
    if (!budget_->TryCharge(bytes)) return OverBudget(what);
    return absl::OkStatus();
  }
  // Makes room for `extra` more elements in *v (ParseBudget::Reserve).
  template <typename T>
  absl::Status Grow(std::vector<T>* v, size_t extra, std::string_view what) {
    if (!budget_->Reserve(v, extra)) return OverBudget(what);
    return absl::OkStatus();
  }

  absl::Status Need(size_t n) const {
    if (size_ - pos_ < n) {
      return Loss("truncated data (", n, " bytes needed, ", size_ - pos_,
                  " left)");
    }
    return absl::OkStatus();
  }
  uint64_t ReadLe(size_t n) {  // after Need(n)
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t{data_[pos_ + i]} << (8 * i);
    pos_ += n;
    return v;
  }
  absl::StatusOr<std::string_view> ReadLine() {
    const size_t limit = std::min(size_ - pos_, kMaxLine);
    const void* nl = std::memchr(data_ + pos_, '\n', limit);
    if (nl == nullptr) return Loss("unterminated text argument");
    const size_t len = static_cast<const uint8_t*>(nl) - (data_ + pos_);
    std::string_view line(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len + 1;
    return line;
  }

  absl::StatusOr<PickleValue*> New(Kind kind) {
    if (out_->values_.size() >= kMaxValues) {
      return Unsupported("more than ", kMaxValues, " objects");
    }
    if (!budget_->TryCharge(bytes_per_value())) {
      return OverBudget(
          absl::StrCat("the pickle's ", out_->values_.size() + 1, " objects"));
    }
    PickleValue& v = out_->values_.emplace_back();
    v.kind = kind;
    return &v;
  }
  absl::Status Push(PickleValue* v) {
    if (stack_.size() + marks_.size() >= kMaxStack) {
      return Unsupported("stack deeper than ", kMaxStack, " entries");
    }
    if (absl::Status s = Grow(&stack_, 1, "the pickle's stack"); !s.ok()) {
      return s;
    }
    stack_.push_back(v);
    return absl::OkStatus();
  }
  size_t Fence() const { return marks_.empty() ? 0 : marks_.back(); }
  absl::StatusOr<PickleValue*> Pop() {
    if (stack_.size() <= Fence()) return Loss("stack underflow");
    PickleValue* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  absl::StatusOr<PickleValue*> Top() {
    if (stack_.size() <= Fence()) return Loss("stack underflow");
    return stack_.back();
  }
  // Pops the last MARK; returns the stack index where its items start.
  absl::StatusOr<size_t> PopMark() {
    if (marks_.empty()) return Loss("MARK expected but not found");
    const size_t k = marks_.back();
    marks_.pop_back();
    return k;
  }
  // Pops everything above the last MARK and the MARK itself, as a new
  // (charged) item list.
  absl::StatusOr<std::vector<PickleValue*>> PopMarkItems() {
    absl::StatusOr<size_t> k = PopMark();
    if (!k.ok()) return k.status();
    return TakeFromStack(*k);
  }
  absl::StatusOr<std::vector<PickleValue*>> TakeFromStack(size_t k) {
    std::vector<PickleValue*> items;
    if (absl::Status s = Grow(&items, stack_.size() - k, "a pickled container");
        !s.ok()) {
      return s;
    }
    items.assign(stack_.begin() + k, stack_.end());
    stack_.resize(k);
    return items;
  }
  // Moves the items above stack index k to the end of *dst.
  absl::Status AppendFromStack(size_t k, std::vector<PickleValue*>* dst,
                               std::string_view what) {
    if (absl::Status s = Grow(dst, stack_.size() - k, what); !s.ok()) return s;
    dst->insert(dst->end(), stack_.begin() + k, stack_.end());
    stack_.resize(k);
    return absl::OkStatus();
  }

  absl::Status PushInt(int64_t v) {
    absl::StatusOr<PickleValue*> p = New(Kind::kInt);
    if (!p.ok()) return p.status();
    (*p)->int_value = v;
    return Push(*p);
  }
  absl::Status PushString(Kind kind, uint64_t len) {
    if (absl::Status s = Need(len); !s.ok()) return s;
    if (absl::Status s = Charge(ParseBudget::StringBytes(len), "a string");
        !s.ok()) {
      return s;
    }
    absl::StatusOr<PickleValue*> p = New(kind);
    if (!p.ok()) return p.status();
    (*p)->str.assign(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return Push(*p);
  }
  absl::Status PushNew(Kind kind, std::vector<PickleValue*> items) {
    absl::StatusOr<PickleValue*> p = New(kind);
    if (!p.ok()) return p.status();
    (*p)->items = std::move(items);
    return Push(*p);
  }
  absl::Status Put(uint64_t index) {
    absl::StatusOr<PickleValue*> top = Top();
    if (!top.ok()) return top.status();
    if (!budget_->ReserveTable(&memo_, 1)) {
      return OverBudget(
          absl::StrCat("the pickle's ", memo_.size() + 1, " memo entries"));
    }
    memo_[index] = *top;
    return absl::OkStatus();
  }
  absl::Status Get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) return Loss("memo index ", index, " is not defined");
    return Push(it->second);
  }

  absl::Status PushGlobal(std::string_view module, std::string_view name);
  absl::Status Reduce();
  absl::Status PersistentLoad();
  absl::Status Step(uint8_t op);

  const uint8_t* data_;
  size_t size_;
  std::string context_;
  PickleReader* out_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  bool stopped_ = false;
  ParseBudget* budget_;
  std::vector<PickleValue*> stack_;
  std::vector<size_t> marks_;
  absl::flat_hash_map<uint64_t, PickleValue*> memo_;
};

absl::Status PickleReader::Machine::PushGlobal(std::string_view module_sv,
                                               std::string_view name_sv) {
  const std::string module(module_sv);
  const std::string name(name_sv);
  Global g;
  DType dtype = DType::kFloat32;
  if (module == "collections" && name == "OrderedDict") {
    g = Global::kOrderedDict;
  } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
    g = Global::kRebuildTensorV2;
  } else if (module == "torch._utils" && name == "_rebuild_tensor") {
    g = Global::kRebuildTensor;
  } else if (module == "torch._utils" && name == "_rebuild_parameter") {
    g = Global::kRebuildParameter;
  } else if (module == "torch.jit._pickle" && name == "restore_type_tag") {
    g = Global::kRestoreTypeTag;
  } else if (module == "torch.jit._pickle" &&
             (name == "build_intlist" || name == "build_floatlist" ||
              name == "build_boollist" || name == "build_doublelist" ||
              name == "build_tensorlist")) {
    g = Global::kBuildList;
  } else if (module == "torch" && absl::EndsWith(name, "Storage")) {
    bool known = false;
    for (const StorageTypeName& st : kStorageTypes) {
      if (name == st.name) {
        dtype = st.dtype;
        known = true;
      }
    }
    if (!known) {
      return Unsupported("unsupported tensor storage type 'torch.",
                         PrintableName(name),
                         "' (supported: float32, float16, bfloat16, float64, "
                         "int64, int32, int16, int8, uint8, bool)");
    }
    g = Global::kStorageType;
  } else if (module == "torch.storage" && name == "_load_from_bytes") {
    return Unsupported(
        "storage pickled inline (torch.storage._load_from_bytes, the legacy "
        "torch.save format) is not supported; re-save the file with "
        "torch.save in the default zip format");
  } else {
    return Unsupported(
        "global '", PrintableName(module), ".", PrintableName(name),
        "' is not allowed (only torch tensor/storage rebuild functions and "
        "collections.OrderedDict are; nothing was executed)");
  }
  if (absl::Status s =
          Charge(ParseBudget::StringBytes(module.size() + 1 + name.size()),
                 "a global");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<PickleValue*> p = New(Kind::kGlobal);
  if (!p.ok()) return p.status();
  (*p)->global = g;
  (*p)->dtype = dtype;
  (*p)->str = absl::StrCat(module, ".", name);
  return Push(*p);
}

absl::Status PickleReader::Machine::PersistentLoad() {
  absl::StatusOr<PickleValue*> pid = Pop();
  if (!pid.ok()) return pid.status();
  const PickleValue& t = **pid;
  if (t.kind != Kind::kTuple || t.items.size() != 5 ||
      t.items[0]->kind != Kind::kString || t.items[0]->str != "storage" ||
      t.items[1]->kind != Kind::kGlobal ||
      t.items[1]->global != Global::kStorageType ||
      t.items[2]->kind != Kind::kString || t.items[3]->kind != Kind::kString ||
      t.items[4]->kind != Kind::kInt || t.items[4]->int_value < 0) {
    return Unsupported(
        "unsupported persistent id (expected ('storage', storage type, key, "
        "location, numel))");
  }
  if (absl::Status s =
          Charge(ParseBudget::StringBytes(t.items[2]->str.size()), "a storage");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<PickleValue*> p = New(Kind::kStorage);
  if (!p.ok()) return p.status();
  (*p)->dtype = t.items[1]->dtype;
  (*p)->str = t.items[2]->str;
  (*p)->int_value = t.items[4]->int_value;
  return Push(*p);
}

absl::Status PickleReader::Machine::Reduce() {
  absl::StatusOr<PickleValue*> args_or = Pop();
  if (!args_or.ok()) return args_or.status();
  absl::StatusOr<PickleValue*> fn_or = Pop();
  if (!fn_or.ok()) return fn_or.status();
  PickleValue* fn = *fn_or;
  PickleValue* args = *args_or;
  if (fn->kind != Kind::kGlobal) {
    return Unsupported("REDUCE on a ", PickleKindName(fn->kind),
                       ", not a callable global");
  }
  if (args->kind != Kind::kTuple) {
    return Loss("REDUCE arguments for ", fn->str, " are a ",
                PickleKindName(args->kind), ", not a tuple");
  }
  const std::vector<PickleValue*>& a = args->items;
  switch (fn->global) {
    case Global::kOrderedDict: {
      std::vector<PickleValue*> items;
      if (a.size() == 1) {
        const size_t n = a[0]->kind == Kind::kDict ? a[0]->items.size()
                                                   : 2 * a[0]->items.size();
        if (absl::Status s = Grow(&items, n, "an OrderedDict's copy");
            !s.ok()) {
          return s;
        }
      }
      if (a.size() == 1 &&
          (a[0]->kind == Kind::kList || a[0]->kind == Kind::kTuple)) {
        for (PickleValue* pair : a[0]->items) {
          if ((pair->kind != Kind::kTuple && pair->kind != Kind::kList) ||
              pair->items.size() != 2) {
            return Unsupported("OrderedDict argument is not a list of pairs");
          }
          items.push_back(pair->items[0]);
          items.push_back(pair->items[1]);
        }
      } else if (a.size() == 1 && a[0]->kind == Kind::kDict) {
        items.assign(a[0]->items.begin(), a[0]->items.end());
      } else if (!a.empty()) {
        return Unsupported("unsupported OrderedDict arguments");
      }
      return PushNew(Kind::kDict, std::move(items));
    }
    case Global::kRebuildTensor:
    case Global::kRebuildTensorV2: {
      if (a.size() < 4 ||
          (fn->global == Global::kRebuildTensor && a.size() != 4)) {
        return Loss(fn->str, " takes at least 4 arguments, got ", a.size());
      }
      if (a[0]->kind != Kind::kStorage) {
        return Loss(fn->str, ": first argument is a ",
                    PickleKindName(a[0]->kind), ", not a storage");
      }
      if (a[1]->kind != Kind::kInt || a[1]->int_value < 0) {
        return Loss(fn->str, ": storage offset is not a non-negative int");
      }
      const PickleValue* size = a[2];
      const PickleValue* stride = a[3];
      if ((size->kind != Kind::kTuple && size->kind != Kind::kList) ||
          (stride->kind != Kind::kTuple && stride->kind != Kind::kList) ||
          size->items.size() != stride->items.size()) {
        return Loss(fn->str, ": size and stride must be tuples of one length");
      }
      if (size->items.size() > 64) {
        return Unsupported("tensor with ", size->items.size(),
                           " dimensions (at most 64 are supported)");
      }
      absl::StatusOr<PickleValue*> t = New(Kind::kTensor);
      if (!t.ok()) return t.status();
      if (absl::Status s = Grow(&(*t)->items, 1, "a tensor"); !s.ok()) {
        return s;
      }
      if (absl::Status s =
              Grow(&(*t)->dims, 2 * size->items.size(), "a tensor");
          !s.ok()) {
        return s;
      }
      (*t)->items.push_back(a[0]);
      (*t)->int_value = a[1]->int_value;
      for (const PickleValue* list : {size, stride}) {
        for (const PickleValue* d : list->items) {
          if (d->kind != Kind::kInt || d->int_value < 0) {
            return Loss(fn->str, ": ", list == size ? "size" : "stride",
                        " has an element that is not a non-negative int");
          }
          (*t)->dims.push_back(d->int_value);
        }
      }
      return Push(*t);
    }
    case Global::kRebuildParameter:
      if (a.empty() || a[0]->kind != Kind::kTensor) {
        return Loss(fn->str, ": first argument is not a tensor");
      }
      return Push(a[0]);
    case Global::kRestoreTypeTag:
      if (a.size() != 2) {
        return Loss(fn->str, " takes 2 arguments, got ", a.size());
      }
      return Push(a[0]);
    case Global::kBuildList:
      if (a.size() != 1 || a[0]->kind != Kind::kList) {
        return Loss(fn->str, " takes one list argument");
      }
      return Push(a[0]);
    case Global::kStorageType:
      return Unsupported("cannot call storage type ", fn->str);
  }
  return Loss("internal: unknown global");
}

absl::Status PickleReader::Machine::Step(uint8_t op) {
  switch (op) {
    case 0x80: {  // PROTO
      if (absl::Status s = Need(1); !s.ok()) return s;
      const uint64_t proto = ReadLe(1);
      if (proto > 5) return Unsupported("unsupported pickle protocol ", proto);
      return absl::OkStatus();
    }
    case 0x95:  // FRAME
      if (absl::Status s = Need(8); !s.ok()) return s;
      ReadLe(8);
      return absl::OkStatus();
    case '.': {  // STOP
      absl::StatusOr<PickleValue*> v = Pop();
      if (!v.ok()) return v.status();
      out_->root_ = *v;
      stopped_ = true;
      return absl::OkStatus();
    }
    case '(':  // MARK
      if (stack_.size() + marks_.size() >= kMaxStack) {
        return Unsupported("stack deeper than ", kMaxStack, " entries");
      }
      if (absl::Status s = Grow(&marks_, 1, "the pickle's stack"); !s.ok()) {
        return s;
      }
      marks_.push_back(stack_.size());
      return absl::OkStatus();
    case '0': {  // POP
      if (stack_.size() > Fence()) {
        stack_.pop_back();
      } else if (!marks_.empty()) {
        marks_.pop_back();
      } else {
        return Loss("stack underflow");
      }
      return absl::OkStatus();
    }
    case '1': {  // POP_MARK
      absl::StatusOr<size_t> k = PopMark();
      if (!k.ok()) return k.status();
      stack_.resize(*k);
      return absl::OkStatus();
    }
    case '2': {  // DUP
      absl::StatusOr<PickleValue*> v = Top();
      if (!v.ok()) return v.status();
      return Push(*v);
    }
    case 'N':
      return PushNew(Kind::kNone, {});
    case 0x88:
    case 0x89: {  // NEWTRUE, NEWFALSE
      absl::StatusOr<PickleValue*> p = New(Kind::kBool);
      if (!p.ok()) return p.status();
      (*p)->bool_value = op == 0x88;
      return Push(*p);
    }
    case 'J': {  // BININT
      if (absl::Status s = Need(4); !s.ok()) return s;
      return PushInt(static_cast<int32_t>(static_cast<uint32_t>(ReadLe(4))));
    }
    case 'K':  // BININT1
      if (absl::Status s = Need(1); !s.ok()) return s;
      return PushInt(static_cast<int64_t>(ReadLe(1)));
    case 'M':  // BININT2
      if (absl::Status s = Need(2); !s.ok()) return s;
      return PushInt(static_cast<int64_t>(ReadLe(2)));
    case 0x8a:    // LONG1
    case 0x8b: {  // LONG4
      const size_t width = op == 0x8a ? 1 : 4;
      if (absl::Status s = Need(width); !s.ok()) return s;
      const uint64_t n = ReadLe(width);
      if (op == 0x8b && n > 0x7FFFFFFF) return Loss("negative LONG4 length");
      if (absl::Status s = Need(n); !s.ok()) return s;
      // Two's complement little-endian; bytes past the 8th must be sign
      // extension.
      uint64_t v = 0;
      for (size_t i = 0; i < n && i < 8; ++i) {
        v |= uint64_t{data_[pos_ + i]} << (8 * i);
      }
      if (n > 0 && n < 8 && (data_[pos_ + n - 1] & 0x80)) {
        v |= ~uint64_t{0} << (8 * n);
      }
      const bool negative = n > 0 && (data_[pos_ + n - 1] & 0x80);
      for (size_t i = 8; i < n; ++i) {
        if (data_[pos_ + i] != (negative ? 0xFF : 0x00)) {
          return Unsupported("integer does not fit in 64 bits");
        }
      }
      if (n > 8 && ((v >> 63) != 0) != negative) {
        return Unsupported("integer does not fit in 64 bits");
      }
      pos_ += n;
      return PushInt(static_cast<int64_t>(v));
    }
    case 'I':    // INT
    case 'L': {  // LONG
      absl::StatusOr<std::string_view> line = ReadLine();
      if (!line.ok()) return line.status();
      std::string_view text = *line;
      if (op == 'I' && (text == "00" || text == "01")) {
        absl::StatusOr<PickleValue*> p = New(Kind::kBool);
        if (!p.ok()) return p.status();
        (*p)->bool_value = text == "01";
        return Push(*p);
      }
      if (op == 'L' && !text.empty() && text.back() == 'L') {
        text.remove_suffix(1);
      }
      int64_t v;
      if (!absl::SimpleAtoi(absl::string_view(text.data(), text.size()), &v)) {
        return Loss("bad integer text '", PrintableName(text), "'");
      }
      return PushInt(v);
    }
    case 'G': {  // BINFLOAT (big-endian)
      if (absl::Status s = Need(8); !s.ok()) return s;
      uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) bits = (bits << 8) | data_[pos_ + i];
      pos_ += 8;
      absl::StatusOr<PickleValue*> p = New(Kind::kFloat);
      if (!p.ok()) return p.status();
      std::memcpy(&(*p)->float_value, &bits, 8);
      return Push(*p);
    }
    case 'F': {  // FLOAT
      absl::StatusOr<std::string_view> line = ReadLine();
      if (!line.ok()) return line.status();
      double v;
      if (!absl::SimpleAtod(absl::string_view(line->data(), line->size()),
                            &v)) {
        return Loss("bad float text '", PrintableName(*line), "'");
      }
      absl::StatusOr<PickleValue*> p = New(Kind::kFloat);
      if (!p.ok()) return p.status();
      (*p)->float_value = v;
      return Push(*p);
    }
    case 'X':  // BINUNICODE
    case 'B':  // BINBYTES
    case 'T':  // BINSTRING
      if (absl::Status s = Need(4); !s.ok()) return s;
      return PushString(op == 'B' ? Kind::kBytes : Kind::kString, ReadLe(4));
    case 0x8c:  // SHORT_BINUNICODE
    case 'C':   // SHORT_BINBYTES
    case 'U':   // SHORT_BINSTRING
      if (absl::Status s = Need(1); !s.ok()) return s;
      return PushString(op == 'C' ? Kind::kBytes : Kind::kString, ReadLe(1));
    case 0x8d:  // BINUNICODE8
    case 0x8e:  // BINBYTES8
    case 0x96:  // BYTEARRAY8
      if (absl::Status s = Need(8); !s.ok()) return s;
      return PushString(op == 0x8d ? Kind::kString : Kind::kBytes, ReadLe(8));
    case '}':
      return PushNew(Kind::kDict, {});
    case ']':
      return PushNew(Kind::kList, {});
    case ')':
      return PushNew(Kind::kTuple, {});
    case 't':    // TUPLE
    case 'l':    // LIST
    case 'd': {  // DICT
      absl::StatusOr<std::vector<PickleValue*>> items = PopMarkItems();
      if (!items.ok()) return items.status();
      if (op == 'd' && items->size() % 2 != 0) {
        return Loss("DICT with an odd number of items");
      }
      return PushNew(op == 't'   ? Kind::kTuple
                     : op == 'l' ? Kind::kList
                                 : Kind::kDict,
                     std::move(*items));
    }
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1/2/3
      const size_t n = op - 0x84;
      if (stack_.size() - Fence() < n) return Loss("stack underflow");
      absl::StatusOr<std::vector<PickleValue*>> items =
          TakeFromStack(stack_.size() - n);
      if (!items.ok()) return items.status();
      return PushNew(Kind::kTuple, *std::move(items));
    }
    case 'a': {  // APPEND
      absl::StatusOr<PickleValue*> v = Pop();
      if (!v.ok()) return v.status();
      absl::StatusOr<PickleValue*> list = Top();
      if (!list.ok()) return list.status();
      if ((*list)->kind != Kind::kList) return Loss("APPEND to a non-list");
      if (absl::Status s = Grow(&(*list)->items, 1, "a list"); !s.ok()) {
        return s;
      }
      (*list)->items.push_back(*v);
      return absl::OkStatus();
    }
    case 'e': {  // APPENDS
      absl::StatusOr<size_t> k = PopMark();
      if (!k.ok()) return k.status();
      // The list sits just below the MARK.
      if (*k <= Fence()) return Loss("stack underflow");
      PickleValue* list = stack_[*k - 1];
      if (list->kind != Kind::kList) return Loss("APPENDS to a non-list");
      return AppendFromStack(*k, &list->items, "a list");
    }
    case 's': {  // SETITEM
      absl::StatusOr<PickleValue*> v = Pop();
      if (!v.ok()) return v.status();
      absl::StatusOr<PickleValue*> k = Pop();
      if (!k.ok()) return k.status();
      absl::StatusOr<PickleValue*> dict = Top();
      if (!dict.ok()) return dict.status();
      if ((*dict)->kind != Kind::kDict) return Loss("SETITEM on a non-dict");
      if (absl::Status s = Grow(&(*dict)->items, 2, "a dict"); !s.ok()) {
        return s;
      }
      (*dict)->items.push_back(*k);
      (*dict)->items.push_back(*v);
      return absl::OkStatus();
    }
    case 'u': {  // SETITEMS
      absl::StatusOr<size_t> k = PopMark();
      if (!k.ok()) return k.status();
      if ((stack_.size() - *k) % 2 != 0) {
        return Loss("SETITEMS with an odd number of items");
      }
      // The dict sits just below the MARK.
      if (*k <= Fence()) return Loss("stack underflow");
      PickleValue* dict = stack_[*k - 1];
      if (dict->kind != Kind::kDict) return Loss("SETITEMS on a non-dict");
      return AppendFromStack(*k, &dict->items, "a dict");
    }
    case 'c': {  // GLOBAL
      absl::StatusOr<std::string_view> module = ReadLine();
      if (!module.ok()) return module.status();
      absl::StatusOr<std::string_view> name = ReadLine();
      if (!name.ok()) return name.status();
      return PushGlobal(*module, *name);
    }
    case 0x93: {  // STACK_GLOBAL
      absl::StatusOr<PickleValue*> name = Pop();
      if (!name.ok()) return name.status();
      absl::StatusOr<PickleValue*> module = Pop();
      if (!module.ok()) return module.status();
      if ((*name)->kind != Kind::kString || (*module)->kind != Kind::kString) {
        return Loss("STACK_GLOBAL arguments are not strings");
      }
      return PushGlobal((*module)->str, (*name)->str);
    }
    case 'R':
      return Reduce();
    case 'b': {  // BUILD: set state; for the types we build it is ignored
      absl::StatusOr<PickleValue*> state = Pop();
      if (!state.ok()) return state.status();
      absl::StatusOr<PickleValue*> obj = Top();
      if (!obj.ok()) return obj.status();
      const Kind k = (*obj)->kind;
      if (k != Kind::kDict && k != Kind::kList && k != Kind::kTensor) {
        return Unsupported("BUILD on a ", PickleKindName(k));
      }
      return absl::OkStatus();
    }
    case 'Q':
      return PersistentLoad();
    case 'q':  // BINPUT
      if (absl::Status s = Need(1); !s.ok()) return s;
      return Put(ReadLe(1));
    case 'r':  // LONG_BINPUT
      if (absl::Status s = Need(4); !s.ok()) return s;
      return Put(ReadLe(4));
    case 0x94:  // MEMOIZE
      return Put(memo_.size());
    case 'p':    // PUT
    case 'g': {  // GET
      absl::StatusOr<std::string_view> line = ReadLine();
      if (!line.ok()) return line.status();
      uint64_t index;
      if (!absl::SimpleAtoi(absl::string_view(line->data(), line->size()),
                            &index)) {
        return Loss("bad memo index '", PrintableName(*line), "'");
      }
      return op == 'p' ? Put(index) : Get(index);
    }
    case 'h':  // BINGET
      if (absl::Status s = Need(1); !s.ok()) return s;
      return Get(ReadLe(1));
    case 'j':  // LONG_BINGET
      if (absl::Status s = Need(4); !s.ok()) return s;
      return Get(ReadLe(4));
    default:
      return Unsupported("unsupported pickle opcode 0x",
                         absl::Hex(op, absl::kZeroPad2));
  }
}

absl::Status PickleReader::Machine::Run() {
  while (!stopped_) {
    if (pos_ >= size_) {
      op_pos_ = pos_;
      return Loss("truncated data (no STOP opcode)");
    }
    op_pos_ = pos_;
    const uint8_t op = data_[pos_++];
    if (absl::Status s = Step(op); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PickleReader>> PickleReader::Parse(
    absl::Span<const uint8_t> bytes, std::string_view context,
    ParseBudget* budget) {
  return GuardAllocation(
      context, [&]() -> absl::StatusOr<std::unique_ptr<PickleReader>> {
        ParseBudget own = ParseBudget::ForInput(bytes.size());
        auto reader = std::unique_ptr<PickleReader>(new PickleReader());
        Machine machine(bytes, context, reader.get(),
                        budget != nullptr ? budget : &own);
        if (absl::Status s = machine.Run(); !s.ok()) return s;
        return reader;
      });
}

}  // namespace rwkv::engine
