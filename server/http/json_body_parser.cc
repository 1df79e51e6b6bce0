#include "server/http/json_body_parser.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace rwkv::server {
namespace {

using json = nlohmann::json;

// Builds the document from SAX events within the limits and keeps the path
// of the value being parsed for error messages.
class BoundedBuilder final : public json::json_sax_t {
 public:
  explicit BoundedBuilder(const JsonLimits& limits) : limits_(limits) {}

  bool null() override { return Add(json(nullptr)); }
  bool boolean(bool v) override { return Add(json(v)); }
  bool number_integer(number_integer_t v) override { return Add(json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return Add(json(v)); }
  bool number_float(number_float_t v, const string_t&) override {
    return Add(json(v));
  }
  bool string(string_t& v) override { return Add(json(std::move(v))); }
  bool binary(binary_t&) override { return Fail("binary values"); }
  bool start_object(std::size_t) override { return Open(json::object()); }
  bool start_array(std::size_t) override { return Open(json::array()); }
  bool end_object() override { return Close(); }
  bool end_array() override { return Close(); }
  bool key(string_t& k) override {
    frames_.back().key = std::move(k);
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 5: ..."
    const size_t colon = what.find(": ");
    if (colon != std::string::npos) what = what.substr(colon + 2);
    // nlohmann counts from 1; offsets count from 0.
    error_ = absl::InvalidArgumentError(
        absl::StrCat("the request body is not valid JSON at byte offset ",
                     position > 0 ? position - 1 : 0, Where(), ": ", what));
    return false;
  }

  json TakeRoot() { return std::move(root_); }
  const absl::Status& error() const { return error_; }

 private:
  struct Frame {
    json* value;
    std::string key;
    size_t index = 0;  // arrays: elements so far
  };

  // " (in messages[2].content)", or "" at the top.
  std::string Where() const {
    std::string path;
    for (const Frame& f : frames_) {
      if (f.value->is_array()) {
        absl::StrAppend(&path, "[", f.index, "]");
      } else if (!f.key.empty()) {
        absl::StrAppend(&path, path.empty() ? "" : ".", f.key);
      }
    }
    return path.empty() ? "" : absl::StrCat(" (in ", path, ")");
  }
  bool Fail(absl::string_view what) {
    error_ = absl::InvalidArgumentError(
        absl::StrCat("the request body has ", what, Where()));
    return false;
  }
  bool Count() {
    if (++values_ > limits_.max_values) {
      return Fail(absl::StrCat("more than ", limits_.max_values, " values"));
    }
    return true;
  }
  // Places `v` in the current container (or as the root); returns it.
  json* Place(json v) {
    if (frames_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Frame& f = frames_.back();
    if (f.value->is_array()) {
      f.value->push_back(std::move(v));
      ++f.index;
      return &f.value->back();
    }
    json& slot = (*f.value)[f.key];
    slot = std::move(v);
    return &slot;
  }
  bool Add(json v) {
    if (!Count()) return false;
    Place(std::move(v));
    return true;
  }
  bool Open(json container) {
    if (!Count()) return false;
    if (static_cast<int>(frames_.size()) >= limits_.max_depth) {
      return Fail(absl::StrCat("values nested deeper than ", limits_.max_depth,
                               " levels"));
    }
    json* placed = Place(std::move(container));
    // An array's index counts the element only once it is complete.
    if (!frames_.empty() && frames_.back().value->is_array()) {
      --frames_.back().index;
    }
    frames_.push_back(Frame{placed, "", 0});
    return true;
  }
  bool Close() {
    frames_.pop_back();
    if (!frames_.empty() && frames_.back().value->is_array()) {
      ++frames_.back().index;
    }
    return true;
  }

  const JsonLimits& limits_;
  json root_;
  std::vector<Frame> frames_;
  size_t values_ = 0;
  absl::Status error_;
};

}  // namespace

absl::StatusOr<json> JsonBodyParser::Parse(absl::string_view body) const {
  if (body.empty()) {
    return absl::InvalidArgumentError("the request body is empty");
  }
  BoundedBuilder builder(limits_);
  const bool ok = json::sax_parse(body.begin(), body.end(), &builder);
  if (!ok) {
    if (!builder.error().ok()) return builder.error();
    return absl::InvalidArgumentError("the request body is not valid JSON");
  }
  return builder.TakeRoot();
}

}  // namespace rwkv::server
