#include "engine/safetensors_reader.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/checkpoint_contents.h"
#include "engine/json_text_shape.h"
#include "nlohmann/json.hpp"

namespace rwkv::engine {
namespace {

using Json = nlohmann::ordered_json;

constexpr int kMaxJsonDepth = 64;

// A std::map<std::string, std::string> node of __metadata__.
constexpr uint64_t kMetadataNodeBytes =
    4 * sizeof(void*) + 2 * sizeof(std::string) + ParseBudget::kAllocOverhead;

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

// Builds CheckpointContents from the header's SAX events, keeping only what
// it needs (each tensor's dtype, shape and offsets, the string entries of
// __metadata__) and charging all of it to the budget; values of other keys
// are skipped without being stored. A tensor is checked when its object
// ends, in the order (and with the messages) the format's rules are listed.
class HeaderReader : public nlohmann::json_sax<Json> {
 public:
  HeaderReader(const std::string& source, const uint8_t* data,
               uint64_t data_size, ParseBudget* budget, CheckpointContents* out)
      : source_(source),
        data_(data),
        data_size_(data_size),
        budget_(budget),
        out_(out) {}

  const absl::Status& status() const { return status_; }

  bool null() override { return Scalar(Token::kOther); }
  bool boolean(bool) override { return Scalar(Token::kOther); }
  bool number_integer(number_integer_t v) override {
    return v >= 0 ? Scalar(Token::kUnsigned, static_cast<uint64_t>(v))
                  : Scalar(Token::kOther);
  }
  bool number_unsigned(number_unsigned_t v) override {
    return Scalar(Token::kUnsigned, v);
  }
  bool number_float(number_float_t, const string_t&) override {
    return Scalar(Token::kOther);
  }
  bool binary(binary_t&) override { return Scalar(Token::kOther); }
  bool string(string_t& v) override;
  bool start_object(std::size_t) override { return Open(/*is_object=*/true); }
  bool start_array(std::size_t) override { return Open(/*is_object=*/false); }
  bool key(string_t& k) override;
  bool end_object() override { return Close(); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception&) override {
    return Fail(Loss("safetensors header is not valid JSON (corrupt file?)"));
  }

 private:
  enum class Token { kOther, kUnsigned };
  // The field of a tensor's object the parser is in.
  enum class Field { kNone, kDtype, kShape, kOffsets, kOther };

  struct Entry {
    std::string name;
    bool dtype_is_string = false;
    std::string dtype;  // its first 32 bytes (enough to tell and to name it)
    bool has_shape = false;  // and it is an array
    std::vector<int64_t> shape;
    bool shape_too_long = false;
    bool shape_bad = false;
    bool has_offsets = false;  // and it is an array
    size_t offsets_count = 0;
    uint64_t offsets[2] = {0, 0};
    bool offsets_bad = false;
  };

  template <typename... Args>
  absl::Status Loss(const Args&... parts) const {
    return absl::DataLossError(absl::StrCat(source_, ": ", parts...));
  }
  bool Fail(absl::Status s) {
    if (status_.ok()) status_ = std::move(s);
    return false;
  }
  bool Open(bool is_object);
  bool Close();
  bool Scalar(Token token, uint64_t value = 0);
  absl::Status FinishTensor();

  const std::string& source_;
  const uint8_t* data_;
  uint64_t data_size_;
  ParseBudget* budget_;
  CheckpointContents* out_;
  absl::Status status_;

  int depth_ = 0;       // containers open
  int skip_depth_ = 0;  // > 0: inside a skipped value opened at this depth
  bool in_metadata_ = false;
  bool in_tensor_ = false;
  Field field_ = Field::kNone;
  std::string key_;  // the last key at depth 1 or 2
  Entry entry_;
};

bool HeaderReader::Open(bool is_object) {
  const int depth = depth_++;
  if (skip_depth_ != 0) return true;
  if (depth == 0) {
    if (!is_object)
      return Fail(Loss("safetensors header is not a JSON object"));
    return true;
  }
  if (depth == 1) {  // the value of a top-level key
    if (key_ == "__metadata__") {
      if (!is_object) return Fail(Loss("__metadata__ is not an object"));
      in_metadata_ = true;
      return true;
    }
    if (!is_object) {
      return Fail(Loss("tensor '", PrintableName(key_),
                       "': header entry is not an object"));
    }
    in_tensor_ = true;
    entry_ = Entry();
    entry_.name = key_;
    return true;
  }
  if (depth == 2 && in_metadata_) {
    return Fail(
        Loss("__metadata__ entry '", PrintableName(key_), "' is not a string"));
  }
  if (depth == 2 && in_tensor_) {
    if (field_ == Field::kDtype) entry_.dtype_is_string = false;
    if (field_ == Field::kShape) {
      entry_.has_shape = !is_object;
      entry_.shape.clear();
      entry_.shape_too_long = entry_.shape_bad = false;
    }
    if (field_ == Field::kOffsets) {
      entry_.has_offsets = !is_object;
      entry_.offsets_count = 0;
      entry_.offsets_bad = false;
    }
    if (is_object || (field_ != Field::kShape && field_ != Field::kOffsets)) {
      skip_depth_ = depth_;
    }
    return true;
  }
  if (depth == 3 && in_tensor_) {  // a container inside shape / data_offsets
    if (field_ == Field::kShape) entry_.shape_bad = true;
    if (field_ == Field::kOffsets) {
      entry_.offsets_bad = true;
      ++entry_.offsets_count;
    }
  }
  skip_depth_ = depth_;
  return true;
}

bool HeaderReader::Close() {
  const int depth = --depth_;
  if (skip_depth_ != 0) {
    if (depth_ < skip_depth_) skip_depth_ = 0;
    return true;
  }
  if (depth == 1 && in_tensor_) {
    in_tensor_ = false;
    field_ = Field::kNone;
    if (absl::Status s = FinishTensor(); !s.ok()) return Fail(std::move(s));
  } else if (depth == 1 && in_metadata_) {
    in_metadata_ = false;
  }
  return true;
}

bool HeaderReader::key(string_t& k) {
  if (skip_depth_ != 0) return true;
  if (depth_ == 1 || depth_ == 2) {
    if (k.size() > key_.capacity() &&
        !budget_->TryCharge(ParseBudget::StringBytes(k.size()))) {
      return Fail(budget_->Exceeded(absl::StrCat(source_, ": a header key")));
    }
    key_ = k;
  }
  if (depth_ == 2 && in_tensor_) {
    field_ = k == "dtype"          ? Field::kDtype
             : k == "shape"        ? Field::kShape
             : k == "data_offsets" ? Field::kOffsets
                                   : Field::kOther;
  }
  return true;
}

bool HeaderReader::Scalar(Token token, uint64_t value) {
  if (skip_depth_ != 0) return true;
  if (depth_ == 0) {
    return Fail(Loss("safetensors header is not a JSON object"));
  }
  if (depth_ == 1) {
    if (key_ == "__metadata__") {
      return Fail(Loss("__metadata__ is not an object"));
    }
    return Fail(Loss("tensor '", PrintableName(key_),
                     "': header entry is not an object"));
  }
  if (depth_ == 2 && in_metadata_) {
    return Fail(
        Loss("__metadata__ entry '", PrintableName(key_), "' is not a string"));
  }
  if (depth_ == 2 && in_tensor_) {
    if (field_ == Field::kDtype) entry_.dtype_is_string = false;
    if (field_ == Field::kShape) entry_.has_shape = false;
    if (field_ == Field::kOffsets) entry_.has_offsets = false;
    return true;
  }
  if (depth_ == 3 && in_tensor_ && field_ == Field::kShape) {
    if (entry_.shape.size() >= kMaxTensorDims) {
      entry_.shape_too_long = true;
    } else if (token != Token::kUnsigned || value > uint64_t{INT64_MAX}) {
      entry_.shape_bad = true;
    } else {
      entry_.shape.push_back(static_cast<int64_t>(value));
    }
    return true;
  }
  if (depth_ == 3 && in_tensor_ && field_ == Field::kOffsets) {
    if (token != Token::kUnsigned) entry_.offsets_bad = true;
    if (entry_.offsets_count < 2) entry_.offsets[entry_.offsets_count] = value;
    ++entry_.offsets_count;
  }
  return true;
}

bool HeaderReader::string(string_t& v) {
  if (skip_depth_ != 0) return true;
  if (depth_ == 2 && in_metadata_) {
    if (!budget_->TryCharge(kMetadataNodeBytes +
                            ParseBudget::StringBytes(key_.size()) +
                            ParseBudget::StringBytes(v.size()))) {
      return Fail(budget_->Exceeded(absl::StrCat(source_, ": __metadata__")));
    }
    out_->metadata[key_] = v;
    return true;
  }
  if (depth_ == 2 && in_tensor_ && field_ == Field::kDtype) {
    entry_.dtype_is_string = true;
    entry_.dtype = v.substr(0, 32);
    return true;
  }
  return Scalar(Token::kOther);
}

absl::Status HeaderReader::FinishTensor() {
  Entry& e = entry_;
  const std::string pname = PrintableName(e.name);
  auto bad = [&](auto&&... parts) {
    return Loss("tensor '", pname, "': ", parts...);
  };
  if (!e.dtype_is_string) return bad("missing or non-string 'dtype'");
  if (!e.has_shape) return bad("missing or non-array 'shape'");
  if (!e.has_offsets || e.offsets_count != 2) {
    return bad("'data_offsets' must be an array of two integers");
  }
  CheckpointTensor t;
  if (!ParseDType(e.dtype, &t.dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": tensor '", pname, "' has unsupported dtype '",
                     PrintableName(e.dtype),
                     "' (supported: F32, F16, BF16, F64, I64, I32, I16, I8, "
                     "U8, BOOL)"));
  }
  if (e.shape_too_long) {
    return bad("more than ", kMaxTensorDims, " dimensions");
  }
  if (e.shape_bad) {
    return bad("shape has an element that is not a non-negative integer");
  }
  int64_t numel;
  if (!ShapeNumel(e.shape, &numel) ||
      !TensorNbytes(t.dtype, numel, &t.nbytes)) {
    return bad("shape ", ShapeString(e.shape), " is too large");
  }
  if (e.offsets_bad) return bad("'data_offsets' must be non-negative integers");
  const uint64_t begin = e.offsets[0], end = e.offsets[1];
  if (end < begin) {
    return bad("data_offsets [", begin, ", ", end, "] end before they begin");
  }
  if (end > data_size_) {
    return bad("data_offsets [", begin, ", ", end,
               "] run past the end of the data section (", data_size_,
               " bytes; truncated file?)");
  }
  if (end - begin != t.nbytes) {
    return bad("data_offsets [", begin, ", ", end, "] hold ", end - begin,
               " bytes but shape ", ShapeString(e.shape), " ",
               std::string(DTypeName(t.dtype)), " needs ", t.nbytes);
  }
  const uint8_t* src = data_ + begin;
  const bool copy = t.nbytes != 0 && !IsAlignedFor(src, t.dtype);
  const uint64_t bytes = ParseBudget::StringBytes(e.name.size()) +
                         ParseBudget::VectorBytes<int64_t>(e.shape.size()) +
                         (copy ? t.nbytes + ParseBudget::kAllocOverhead : 0);
  if (!budget_->Reserve(&out_->tensors, 1) || !budget_->TryCharge(bytes) ||
      (copy && !budget_->Reserve(&out_->owned, 1))) {
    return budget_->Exceeded(absl::StrCat(
        source_, ": the header's ", out_->tensors.size() + 1, " tensors"));
  }
  t.name = std::move(e.name);
  t.shape = std::move(e.shape);
  if (t.nbytes == 0) {
    t.data = EmptyTensorData();
  } else if (!copy) {
    t.data = src;
  } else {
    std::unique_ptr<uint8_t[]> buf = AllocateBytes(t.nbytes);
    if (buf == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrCat(source_, ": tensor '", pname, "': cannot allocate ",
                       t.nbytes, " bytes"));
    }
    std::memcpy(buf.get(), src, t.nbytes);
    t.data = buf.get();
    out_->owned.push_back(std::move(buf));
  }
  out_->tensors.push_back(std::move(t));
  return absl::OkStatus();
}

absl::StatusOr<CheckpointContents> Parse(absl::Span<const uint8_t> file,
                                         const std::string& source,
                                         ParseBudget* budget) {
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
  const JsonTextShape shape = ScanJsonText(text);
  if (shape.max_depth > kMaxJsonDepth) {
    return loss("safetensors header nests deeper than ", kMaxJsonDepth,
                " levels");
  }
  // The lexer's buffers, and the reader's copy of the last key.
  if (!budget->TryCharge(shape.LexerBytes())) {
    return budget->Exceeded(absl::StrCat(source, ": the safetensors header"));
  }
  if (!Json::accept(text.begin(), text.end())) {
    return loss("safetensors header is not valid JSON (corrupt file?)");
  }
  CheckpointContents out;
  HeaderReader reader(source, file.data() + 8 + header_len,
                      file.size() - 8 - header_len, budget, &out);
  if (!Json::sax_parse(text.begin(), text.end(), &reader)) {
    if (!reader.status().ok()) return reader.status();
    return loss("safetensors header is not valid JSON (corrupt file?)");
  }
  return out;
}

}  // namespace

absl::StatusOr<CheckpointContents> ReadSafetensors(
    absl::Span<const uint8_t> file, std::string_view source_view,
    ParseBudget* budget) {
  const std::string source(source_view);
  return GuardAllocation(source, [&]() -> absl::StatusOr<CheckpointContents> {
    ParseBudget own = ParseBudget::ForInput(file.size());
    return Parse(file, source, budget != nullptr ? budget : &own);
  });
}

}  // namespace rwkv::engine
