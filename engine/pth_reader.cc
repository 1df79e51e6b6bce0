#include "engine/pth_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
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

class Flattener {
 public:
  Flattener(std::string_view source, size_t budget)
      : source_(source), budget_(budget) {}

  absl::Status Visit(const PickleValue& v, const std::string& name, int depth) {
    if (budget_-- == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_,
                       ": the pickled object graph is too large (shared or "
                       "cyclic references?)"));
    }
    switch (v.kind) {
      case Kind::kTensor:
        if (!names_.emplace(name, tensors.size()).second) {
          return absl::InvalidArgumentError(absl::StrCat(
              source_, ": duplicate tensor name '", PrintableName(name), "'"));
        }
        tensors.emplace_back(name, &v);
        return absl::OkStatus();
      case Kind::kDict:
      case Kind::kList:
      case Kind::kTuple: {
        if (depth >= kMaxNesting) {
          return absl::InvalidArgumentError(
              absl::StrCat(source_, ": containers nested deeper than ",
                           kMaxNesting, " levels"));
        }
        const std::string prefix = name.empty() ? "" : name + ".";
        if (v.kind == Kind::kDict) {
          for (size_t i = 0; i + 1 < v.items.size(); i += 2) {
            absl::StatusOr<std::string> key = KeyString(*v.items[i]);
            if (!key.ok()) return key.status();
            absl::Status s = Visit(*v.items[i + 1], prefix + *key, depth + 1);
            if (!s.ok()) return s;
          }
        } else {
          for (size_t i = 0; i < v.items.size(); ++i) {
            absl::Status s =
                Visit(*v.items[i], prefix + std::to_string(i), depth + 1);
            if (!s.ok()) return s;
          }
        }
        return absl::OkStatus();
      }
      case Kind::kNone:
      case Kind::kBool:
      case Kind::kInt:
      case Kind::kFloat:
      case Kind::kString:
        metadata[name] = *KeyString(v);
        return absl::OkStatus();
      case Kind::kBytes:
      case Kind::kGlobal:
      case Kind::kStorage:
        return absl::OkStatus();  // nothing we can represent; skipped
    }
    return absl::OkStatus();
  }

  std::vector<std::pair<std::string, const PickleValue*>> tensors;
  std::map<std::string, std::string> metadata;

 private:
  absl::StatusOr<std::string> KeyString(const PickleValue& k) const {
    switch (k.kind) {
      case Kind::kString:
        return k.str;
      case Kind::kInt:
        return std::to_string(k.int_value);
      case Kind::kBool:
        return std::string(k.bool_value ? "True" : "False");
      case Kind::kNone:
        return std::string("None");
      case Kind::kFloat:
        return PythonFloatRepr(k.float_value);
      default:
        return absl::InvalidArgumentError(
            absl::StrCat(source_, ": unsupported dict key of type ",
                         PickleKindName(k.kind)));
    }
  }

  std::string source_;
  size_t budget_;
  absl::flat_hash_map<std::string, size_t> names_;
};

}  // namespace

absl::StatusOr<CheckpointContents> ReadPth(absl::Span<const uint8_t> file,
                                           std::string_view source_name,
                                           bool verify_checksums) {
  const std::string source(source_name);
  absl::StatusOr<ZipReader> zip = ZipReader::Parse(file, source);
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
      *pkl_bytes, absl::StrCat(source, ": ", PrintableName(pkl->name)));
  if (!pickle.ok()) return pickle.status();
  const PickleValue& root = (*pickle)->root();
  if (root.kind != Kind::kDict && root.kind != Kind::kList &&
      root.kind != Kind::kTuple) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": the pickled object is a ", PickleKindName(root.kind),
        ", not a dict of tensors (state_dict)"));
  }
  Flattener flat(source, 2 * (*pickle)->num_values() + 1024);
  if (absl::Status s = flat.Visit(root, "", 0); !s.ok()) return s;

  CheckpointContents out;
  out.metadata = std::move(flat.metadata);
  out.tensors.reserve(flat.tensors.size());
  // Materialized copies may exceed the file's size (broadcast views), but
  // not without bound.
  uint64_t copy_budget = 8 * uint64_t{file.size()} + (uint64_t{64} << 20);
  absl::flat_hash_map<std::string, absl::Span<const uint8_t>> records;
  for (const auto& [name, t] : flat.tensors) {
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
      it = records.emplace(storage.str, *b).first;
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
    CheckpointTensor ct;
    ct.name = name;
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
      if (nbytes > copy_budget) {
        return absl::InvalidArgumentError(absl::StrCat(
            source, ": tensor '", pname, "' is a strided view of ", nbytes,
            " bytes, too large to copy for a file of ", file.size(), " bytes"));
      }
      copy_budget -= nbytes;
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

}  // namespace rwkv::engine
