#include "engine/safetensors_reader.h"

#include <cstring>
#include <exception>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/checkpoint_contents.h"
#include "nlohmann/json.hpp"

namespace rwkv::engine {
namespace {

using Json = nlohmann::ordered_json;

constexpr int kMaxJsonDepth = 64;

bool ParseDType(std::string_view s, DType* dtype) {
  static constexpr std::pair<std::string_view, DType> kNames[] = {
      {"F32", DType::kFloat32},   {"F16", DType::kFloat16},
      {"BF16", DType::kBFloat16}, {"F64", DType::kFloat64},
      {"I64", DType::kInt64},     {"I32", DType::kInt32},
      {"I16", DType::kInt16},     {"I8", DType::kInt8},
      {"U8", DType::kUInt8},      {"BOOL", DType::kBool},
  };
  for (const auto& [name, d] : kNames) {
    if (s == name) {
      *dtype = d;
      return true;
    }
  }
  return false;
}

// Deepest [ / { nesting outside strings (the JSON parser recurses).
int JsonDepth(std::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escape = false;
  for (char c : text) {
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

bool ReadUint(const Json& j, uint64_t* v) {
  if (!j.is_number_unsigned()) {
    if (!j.is_number_integer() || j.get<int64_t>() < 0) return false;
  }
  *v = j.get<uint64_t>();
  return true;
}

absl::StatusOr<CheckpointContents> Parse(absl::Span<const uint8_t> file,
                                         const std::string& source) {
  auto loss = [&](auto&&... parts) {
    return absl::DataLossError(absl::StrCat(source, ": ", parts...));
  };
  if (file.size() < 8) return loss("safetensors header truncated");
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= uint64_t{file[i]} << (8 * i);
  if (header_len > kMaxSafetensorsHeader) {
    return loss("safetensors header length ", header_len,
                " is implausible (over 100 MB; corrupt file?)");
  }
  if (header_len > file.size() - 8) {
    return loss("safetensors header length ", header_len,
                " exceeds the file size ", file.size(), " (truncated file?)");
  }
  const std::string_view text(reinterpret_cast<const char*>(file.data() + 8),
                              header_len);
  if (JsonDepth(text) > kMaxJsonDepth) {
    return loss("safetensors header nests deeper than ", kMaxJsonDepth,
                " levels");
  }
  const Json header = Json::parse(text.begin(), text.end(), nullptr,
                                  /*allow_exceptions=*/false);
  if (header.is_discarded()) {
    return loss("safetensors header is not valid JSON (corrupt file?)");
  }
  if (!header.is_object()) {
    return loss("safetensors header is not a JSON object");
  }
  const uint8_t* data = file.data() + 8 + header_len;
  const uint64_t data_size = file.size() - 8 - header_len;

  CheckpointContents out;
  out.tensors.reserve(header.size());
  for (const auto& [name, info] : header.items()) {
    const std::string pname = PrintableName(name);
    if (name == "__metadata__") {
      if (!info.is_object()) return loss("__metadata__ is not an object");
      for (const auto& [key, value] : info.items()) {
        if (!value.is_string()) {
          return loss("__metadata__ entry '", PrintableName(key),
                      "' is not a string");
        }
        out.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    auto bad = [&](auto&&... parts) {
      return loss("tensor '", pname, "': ", parts...);
    };
    if (!info.is_object()) return bad("header entry is not an object");
    auto dtype_it = info.find("dtype");
    auto shape_it = info.find("shape");
    auto offsets_it = info.find("data_offsets");
    if (dtype_it == info.end() || !dtype_it->is_string()) {
      return bad("missing or non-string 'dtype'");
    }
    if (shape_it == info.end() || !shape_it->is_array()) {
      return bad("missing or non-array 'shape'");
    }
    if (offsets_it == info.end() || !offsets_it->is_array() ||
        offsets_it->size() != 2) {
      return bad("'data_offsets' must be an array of two integers");
    }
    CheckpointTensor t;
    t.name = name;
    const std::string dtype_name = dtype_it->get<std::string>();
    if (!ParseDType(dtype_name, &t.dtype)) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": tensor '", pname, "' has unsupported dtype '",
                       PrintableName(dtype_name),
                       "' (supported: F32, F16, BF16, F64, I64, I32, I16, I8, "
                       "U8, BOOL)"));
    }
    if (shape_it->size() > kMaxTensorDims) {
      return bad("more than ", kMaxTensorDims, " dimensions");
    }
    for (const Json& d : *shape_it) {
      uint64_t v;
      if (!ReadUint(d, &v) || v > uint64_t{INT64_MAX}) {
        return bad("shape has an element that is not a non-negative integer");
      }
      t.shape.push_back(static_cast<int64_t>(v));
    }
    int64_t numel;
    if (!ShapeNumel(t.shape, &numel) ||
        !TensorNbytes(t.dtype, numel, &t.nbytes)) {
      return bad("shape ", ShapeString(t.shape), " is too large");
    }
    uint64_t begin, end;
    if (!ReadUint((*offsets_it)[0], &begin) ||
        !ReadUint((*offsets_it)[1], &end)) {
      return bad("'data_offsets' must be non-negative integers");
    }
    if (end < begin) {
      return bad("data_offsets [", begin, ", ", end, "] end before they begin");
    }
    if (end > data_size) {
      return bad("data_offsets [", begin, ", ", end,
                 "] run past the end of the data section (", data_size,
                 " bytes; truncated file?)");
    }
    if (end - begin != t.nbytes) {
      return bad("data_offsets [", begin, ", ", end, "] hold ", end - begin,
                 " bytes but shape ", ShapeString(t.shape), " ",
                 std::string(DTypeName(t.dtype)), " needs ", t.nbytes);
    }
    const uint8_t* src = data + begin;
    if (t.nbytes == 0) {
      t.data = EmptyTensorData();
    } else if (IsAlignedFor(src, t.dtype)) {
      t.data = src;
    } else {
      std::unique_ptr<uint8_t[]> buf = AllocateBytes(t.nbytes);
      if (buf == nullptr) {
        return absl::ResourceExhaustedError(
            absl::StrCat(source, ": tensor '", pname, "': cannot allocate ",
                         t.nbytes, " bytes"));
      }
      std::memcpy(buf.get(), src, t.nbytes);
      t.data = buf.get();
      out.owned.push_back(std::move(buf));
    }
    out.tensors.push_back(std::move(t));
  }
  return out;
}

}  // namespace

absl::StatusOr<CheckpointContents> ReadSafetensors(
    absl::Span<const uint8_t> file, std::string_view source) {
  try {
    return Parse(file, std::string(source));
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat(
        std::string(source), ": invalid safetensors header: ", e.what()));
  }
}

}  // namespace rwkv::engine
