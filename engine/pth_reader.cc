#include "engine/pth_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/checkpoint_contents.h"
#include "engine/pickle_reader.h"
#include "engine/zip_reader.h"

namespace rwkv::engine {
namespace {

using Kind = PickleValue::Kind;

constexpr int kMaxNesting = 32;

// Python's repr() of a float ("0.5", "1e-05", "1.0", "inf", "nan").
std::string PythonFloatRepr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto res =
      std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // "-d.ddde+XX"
  std::string sign;
  if (!sci.empty() && sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  int exp = 0;
  std::from_chars(sci.data() + e + 1 + (sci[e + 1] == '+'),
                  sci.data() + sci.size(), exp);
  const int decpt = exp + 1;  // position of the decimal point in digits
  std::string out;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out = "0." + std::string(-decpt, '0') + digits;
    } else if (static_cast<size_t>(decpt) >= digits.size()) {
      out = digits + std::string(decpt - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, decpt) + "." + digits.substr(decpt);
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    const int x = decpt - 1;
    out += x < 0 ? "e-" : "e+";
    const int ax = x < 0 ? -x : x;
    if (ax < 10) out += "0";
    out += std::to_string(ax);
  }
  return sign + out;
}

// Copies a strided view element by element into dst (row-major).
void CopyStrided(const uint8_t* src, size_t esize,
                 absl::Span<const int64_t> shape,
                 absl::Span<const int64_t> stride, uint8_t* dst) {
  const size_t nd = shape.size();
  if (nd == 0) {
    std::memcpy(dst, src, esize);
    return;
  }
  std::vector<int64_t> index(nd, 0);
  const int64_t inner = shape[nd - 1];
  const int64_t inner_stride = stride[nd - 1];
  while (true) {
    int64_t off = 0;
    for (size_t d = 0; d + 1 < nd; ++d) off += index[d] * stride[d];
    const uint8_t* s = src + off * esize;
    if (inner_stride == 1) {
      std::memcpy(dst, s, inner * esize);
      dst += inner * esize;
    } else {
      for (int64_t i = 0; i < inner; ++i) {
        std::memcpy(dst, s + i * inner_stride * esize, esize);
        dst += esize;
      }
    }
    size_t d = nd - 1;
    while (d > 0) {
      --d;
      if (++index[d] < shape[d]) break;
      index[d] = 0;
      if (d == 0) return;
    }
    if (nd == 1) return;
  }
}

// Flattens the pickled object into '.'-joined names. Every name it keeps
// (tensor names, metadata keys and values) and its path buffer are charged
// to the budget: nested containers sharing long keys would otherwise build
// names far larger than the file.
class Flattener {
 public:
  Flattener(std::string_view source, size_t max_visits, ParseBudget* budget)
      : source_(source), visits_left_(max_visits), budget_(budget) {}

  // Visits `v` named by the current path.
  absl::Status Visit(const PickleValue& v, int depth) {
    if (visits_left_-- == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_,
                       ": the pickled object graph is too large (shared or "
                       "cyclic references?)"));
    }
    switch (v.kind) {
      case Kind::kTensor:
        return AddTensor(v);
      case Kind::kDict:
      case Kind::kList:
      case Kind::kTuple: {
        if (depth >= kMaxNesting) {
          return absl::InvalidArgumentError(
              absl::StrCat(source_, ": containers nested deeper than ",
                           kMaxNesting, " levels"));
        }
        const size_t parent = path_.size();
        const bool dot = !path_.empty();
        const size_t step = v.kind == Kind::kDict ? 2 : 1;
        for (size_t i = 0; i + step - 1 < v.items.size(); i += step) {
          char number[32];
          std::string_view key;
          if (v.kind == Kind::kDict) {
            absl::StatusOr<std::string_view> k = KeyString(*v.items[i], number);
            if (!k.ok()) return k.status();
            key = *k;
          } else {
            key = std::string_view(
                number,
                std::to_chars(number, number + sizeof(number), i).ptr - number);
          }
          if (absl::Status s = Extend(parent, dot, key); !s.ok()) return s;
          const PickleValue& child = *v.items[i + step - 1];
          if (absl::Status s = Visit(child, depth + 1); !s.ok()) return s;
        }
        path_.resize(parent);
        return absl::OkStatus();
      }
      case Kind::kNone:
      case Kind::kBool:
      case Kind::kInt:
      case Kind::kFloat:
      case Kind::kString:
        return AddMetadata(v);
      case Kind::kBytes:
      case Kind::kGlobal:
      case Kind::kStorage:
        return absl::OkStatus();  // nothing we can represent; skipped
    }
    return absl::OkStatus();
  }

  // Tensor names in file order (a deque: the names stay where they are, so
  // the duplicate index can point at them).
  std::deque<std::pair<std::string, const PickleValue*>> tensors;
  std::map<std::string, std::string> metadata;

 private:
  // A std::map node of metadata: tree links, two strings, overhead.
  static constexpr uint64_t kMetadataNodeBytes =
      4 * sizeof(void*) + 2 * sizeof(std::string) + ParseBudget::kAllocOverhead;
  // A deque slot of `tensors` (and its share of the deque's block map).
  static constexpr uint64_t kTensorEntryBytes =
      sizeof(std::pair<std::string, const PickleValue*>) + 2 * sizeof(void*);

  absl::Status OverBudget(const std::string& what) const {
    return budget_->Exceeded(absl::StrCat(source_, ": ", what));
  }

  // path_ = path_[0, parent) + ('.' if dot) + key, charging its growth.
  absl::Status Extend(size_t parent, bool dot, std::string_view key) {
    const size_t size = parent + (dot ? 1 : 0) + key.size();
    if (size > path_.capacity()) {
      const size_t cap = std::max(size, 2 * path_.capacity());
      if (!budget_->TryCharge(ParseBudget::StringBytes(cap))) {
        return OverBudget(absl::StrCat("a ", size, "-byte name"));
      }
      path_.reserve(cap);
    }
    path_.resize(parent);
    if (dot) path_.push_back('.');
    path_.append(key);
    return absl::OkStatus();
  }

  absl::Status AddTensor(const PickleValue& v) {
    if (!budget_->TryCharge(kTensorEntryBytes +
                            ParseBudget::StringBytes(path_.size()))) {
      return OverBudget(
          absl::StrCat("the names of ", tensors.size() + 1, " tensors"));
    }
    if (!budget_->ReserveTable(&names_, 1)) {
      return OverBudget(
          absl::StrCat("the names of ", tensors.size() + 1, " tensors"));
    }
    tensors.emplace_back(path_, &v);
    if (!names_.insert(tensors.back().first).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          source_, ": duplicate tensor name '", PrintableName(path_), "'"));
    }
    return absl::OkStatus();
  }

  absl::Status AddMetadata(const PickleValue& v) {
    char number[32];
    absl::StatusOr<std::string_view> value = KeyString(v, number);
    if (!value.ok()) return value.status();
    if (!budget_->TryCharge(kMetadataNodeBytes +
                            ParseBudget::StringBytes(path_.size()) +
                            ParseBudget::StringBytes(value->size()))) {
      return OverBudget(absl::StrCat("the metadata entries (",
                                     metadata.size() + 1, " so far)"));
    }
    metadata[path_] = std::string(*value);
    return absl::OkStatus();
  }

  // A key or scalar as Python's str() prints it; numbers are written into
  // `buffer` (32 bytes).
  absl::StatusOr<std::string_view> KeyString(const PickleValue& k,
                                             char* buffer) const {
    switch (k.kind) {
      case Kind::kString:
        return std::string_view(k.str);
      case Kind::kInt:
        return std::string_view(
            buffer,
            std::to_chars(buffer, buffer + 32, k.int_value).ptr - buffer);
      case Kind::kBool:
        return std::string_view(k.bool_value ? "True" : "False");
      case Kind::kNone:
        return std::string_view("None");
      case Kind::kFloat: {
        const std::string repr = PythonFloatRepr(k.float_value);
        const size_t n = std::min<size_t>(repr.size(), 32);
        std::memcpy(buffer, repr.data(), n);
        return std::string_view(buffer, n);
      }
      default:
        return absl::InvalidArgumentError(
            absl::StrCat(source_, ": unsupported dict key of type ",
                         PickleKindName(k.kind)));
    }
  }

  std::string source_;
  size_t visits_left_;
  ParseBudget* budget_;
  std::string path_;
  absl::flat_hash_set<std::string_view> names_;
};

absl::StatusOr<CheckpointContents> ReadArchive(absl::Span<const uint8_t> file,
                                               const std::string& source,
                                               bool verify_checksums,
                                               ParseBudget* budget);

}  // namespace

absl::StatusOr<CheckpointContents> ReadPth(absl::Span<const uint8_t> file,
                                           std::string_view source_name,
                                           bool verify_checksums,
                                           ParseBudget* budget) {
  const std::string source(source_name);
  return GuardAllocation(source, [&]() -> absl::StatusOr<CheckpointContents> {
    ParseBudget own = ParseBudget::ForInput(file.size());
    return ReadArchive(file, source, verify_checksums,
                       budget != nullptr ? budget : &own);
  });
}

namespace {

absl::StatusOr<CheckpointContents> ReadArchive(absl::Span<const uint8_t> file,
                                               const std::string& source,
                                               bool verify_checksums,
                                               ParseBudget* budget) {
  absl::StatusOr<ZipReader> zip = ZipReader::Parse(file, source, budget);
  if (!zip.ok()) return zip.status();

  // The archive's folder: the one holding data.pkl.
  const ZipReader::Entry* pkl = nullptr;
  for (const ZipReader::Entry& e : zip->entries()) {
    const std::string_view name = e.name;
    if (name.size() < 8 || name.substr(name.size() - 8) != "data.pkl") continue;
    const std::string_view dir = name.substr(0, name.size() - 8);
    if (!dir.empty() &&
        (dir.back() != '/' || dir.find('/') != dir.size() - 1)) {
      continue;
    }
    if (pkl != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": the zip archive holds several data.pkl records ('",
          PrintableName(pkl->name), "', '", PrintableName(e.name), "')"));
    }
    pkl = &e;
  }
  if (pkl == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        source,
        ": zip archive without a data.pkl record (not a torch.save "
        "checkpoint)"));
  }
  const std::string prefix = pkl->name.substr(0, pkl->name.size() - 8);
  if (zip->Find(prefix + "constants.pkl") != nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        source,
        ": this is a TorchScript archive (torch.jit.save), not "
        "supported; save the model's state_dict() with torch.save"));
  }
  if (const ZipReader::Entry* bo = zip->Find(prefix + "byteorder")) {
    absl::StatusOr<absl::Span<const uint8_t>> b = zip->Read(*bo, true);
    if (!b.ok()) return b.status();
    const std::string_view order(reinterpret_cast<const char*>(b->data()),
                                 b->size());
    if (order != "little") {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": byte order '", PrintableName(order),
                       "' is not supported (only little-endian)"));
    }
  }

  absl::StatusOr<absl::Span<const uint8_t>> pkl_bytes = zip->Read(*pkl, true);
  if (!pkl_bytes.ok()) return pkl_bytes.status();
  absl::StatusOr<std::unique_ptr<PickleReader>> pickle = PickleReader::Parse(
      *pkl_bytes, absl::StrCat(source, ": ", PrintableName(pkl->name)), budget);
  if (!pickle.ok()) return pickle.status();
  const PickleValue& root = (*pickle)->root();
  if (root.kind != Kind::kDict && root.kind != Kind::kList &&
      root.kind != Kind::kTuple) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": the pickled object is a ", PickleKindName(root.kind),
        ", not a dict of tensors (state_dict)"));
  }
  Flattener flat(source, 2 * (*pickle)->num_values() + 1024, budget);
  if (absl::Status s = flat.Visit(root, 0); !s.ok()) return s;

  CheckpointContents out;
  out.metadata = std::move(flat.metadata);
  if (!budget->Reserve(&out.tensors, flat.tensors.size())) {
    return budget->Exceeded(
        absl::StrCat(source, ": ", flat.tensors.size(), " tensors"));
  }
  // Copies of strided or misaligned tensors come out of the budget too, so
  // broadcast views (stride 0) cannot inflate a small file.
  absl::flat_hash_map<std::string, absl::Span<const uint8_t>> records;
  for (auto& [name, t] : flat.tensors) {
    const PickleValue& storage = t->storage();
    const DType dtype = storage.dtype;
    const size_t esize = DTypeSize(dtype);
    const std::string pname = PrintableName(name);
    auto loss = [&](auto&&... parts) {
      return absl::DataLossError(
          absl::StrCat(source, ": tensor '", pname, "': ", parts...));
    };

    // Storage bytes.
    auto it = records.find(storage.str);
    if (it == records.end()) {
      const std::string record = prefix + "data/" + storage.str;
      const ZipReader::Entry* e = zip->Find(record);
      if (e == nullptr) {
        return loss("storage record '", PrintableName(record), "' is missing");
      }
      absl::StatusOr<absl::Span<const uint8_t>> b =
          zip->Read(*e, verify_checksums);
      if (!b.ok()) return b.status();
      if (!budget->ReserveTable(&records, 1) ||
          !budget->TryCharge(ParseBudget::StringBytes(storage.str.size()))) {
        return budget->Exceeded(absl::StrCat(source, ": the storage index"));
      }
      // Copied first: absl's tables are not exception-safe if constructing
      // an entry in place throws; moving a string cannot.
      std::string key = storage.str;
      it = records.emplace(std::move(key), *b).first;
    }
    const absl::Span<const uint8_t> bytes = it->second;
    const uint64_t storage_numel = static_cast<uint64_t>(storage.int_value);
    if (storage_numel > bytes.size() / esize) {
      return loss("storage '", PrintableName(storage.str), "' should hold ",
                  storage_numel, " ", std::string(DTypeName(dtype)),
                  " elements but its record has ", bytes.size(), " bytes");
    }

    // The view.
    const absl::Span<const int64_t> shape = t->shape();
    const absl::Span<const int64_t> stride = t->stride();
    int64_t numel;
    size_t nbytes;
    if (!ShapeNumel(shape, &numel) || !TensorNbytes(dtype, numel, &nbytes)) {
      return loss("invalid shape ", ShapeString(shape));
    }
    const uint64_t offset = static_cast<uint64_t>(t->int_value);
    if (!budget->TryCharge(ParseBudget::VectorBytes<int64_t>(shape.size()))) {
      return budget->Exceeded(absl::StrCat(source, ": tensor '", pname, "'"));
    }
    CheckpointTensor ct;
    ct.name = std::move(name);
    ct.dtype = dtype;
    ct.shape.assign(shape.begin(), shape.end());
    ct.nbytes = nbytes;
    if (numel == 0) {
      ct.data = EmptyTensorData();
      out.tensors.push_back(std::move(ct));
      continue;
    }
    uint64_t last = offset;  // index of the last element reached
    bool overflow = false;
    bool contiguous = true;
    uint64_t expected = 1;
    for (size_t d = shape.size(); d-- > 0;) {
      const uint64_t n = static_cast<uint64_t>(shape[d]);
      const uint64_t s = static_cast<uint64_t>(stride[d]);
      uint64_t reach;
      overflow |= __builtin_mul_overflow(n - 1, s, &reach);
      overflow |= __builtin_add_overflow(last, reach, &last);
      if (n != 1) {
        if (s != expected) contiguous = false;
        overflow |= __builtin_mul_overflow(expected, n, &expected);
      }
    }
    if (overflow || last >= storage_numel) {
      return loss("shape ", ShapeString(shape), ", stride ",
                  ShapeString(stride), ", offset ", offset,
                  " reaches past the end of its storage (", storage_numel,
                  " elements)");
    }
    const uint8_t* src = bytes.data() + offset * esize;
    if (contiguous && IsAlignedFor(src, dtype)) {
      ct.data = src;
    } else {
      if (nbytes > budget->limit() ||
          !budget->TryCharge(nbytes + ParseBudget::kAllocOverhead) ||
          !budget->Reserve(&out.owned, 1)) {
        return absl::InvalidArgumentError(absl::StrCat(
            source, ": tensor '", pname, "' is a ",
            contiguous ? "misaligned tensor" : "strided view", " of ", nbytes,
            " bytes, too large to copy for a file of ", file.size(), " bytes"));
      }
      std::unique_ptr<uint8_t[]> buf = AllocateBytes(nbytes);
      if (buf == nullptr) {
        return absl::ResourceExhaustedError(
            absl::StrCat(source, ": tensor '", pname, "': cannot allocate ",
                         nbytes, " bytes"));
      }
      if (contiguous) {
        std::memcpy(buf.get(), src, nbytes);
      } else {
        CopyStrided(src, esize, shape, stride, buf.get());
      }
      ct.data = buf.get();
      out.owned.push_back(std::move(buf));
    }
    out.tensors.push_back(std::move(ct));
  }
  return out;
}

}  // namespace

}  // namespace rwkv::engine
