#include "server/http/json_body_parser.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/app/field_error.h"

namespace rwkv::server {
namespace {

using json = nlohmann::json;

// Builds the document from SAX events within the limits and keeps the path
// of the value being parsed for error messages.
class BoundedBuilder final : public json::json_sax_t {
 public:
  BoundedBuilder(const JsonLimits& limits, size_t body_bytes)
      : limits_(limits),
        budget_(limits.bytes_per_body_byte * body_bytes + limits.extra_bytes) {}

  bool null() override { return Add(json(nullptr), 0); }
  bool boolean(bool v) override { return Add(json(v), 0); }
  bool number_integer(number_integer_t v) override { return Add(json(v), 0); }
  bool number_unsigned(number_unsigned_t v) override { return Add(json(v), 0); }
  bool number_float(number_float_t v, const string_t&) override {
    return Add(json(v), 0);
  }
  bool string(string_t& v) override {
    const size_t heap = v.size() + sizeof(string_t);
    return Add(json(std::move(v)), heap);
  }
  bool binary(binary_t&) override { return Fail("binary values"); }
  bool start_object(std::size_t) override {
    return Open(json::object(), sizeof(json::object_t));
  }
  bool start_array(std::size_t) override {
    return Open(json::array(), sizeof(json::array_t));
  }
  bool end_object() override { return Close(); }
  bool end_array() override { return Close(); }
  bool key(string_t& k) override {
    // A map node: the key, its json and the tree's links.
    if (!Charge(k.size() + sizeof(string_t) + kMapNodeBytes)) return false;
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
    error_ = ErrorAtPath(
        absl::StrCat("the request body is not valid JSON at byte offset ",
                     position > 0 ? position - 1 : 0),
        absl::StrCat(": ", what));
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

  // The path of the value being parsed ("messages[2].content"), or "" at
  // the top.
  std::string Path() const {
    std::string path;
    for (const Frame& f : frames_) {
      if (f.value->is_array()) {
        absl::StrAppend(&path, "[", f.index, "]");
      } else if (!f.key.empty()) {
        absl::StrAppend(&path, path.empty() ? "" : ".", f.key);
      }
    }
    return path;
  }
  // INVALID_ARGUMENT "<head> (in <path>)<tail>", or "<head><tail>" at the
  // top. The path is the error's field when it names a request parameter
  // (the body is an object, so the path starts with a member's name).
  absl::Status ErrorAtPath(absl::string_view head,
                           absl::string_view tail = "") const {
    const std::string path = Path();
    if (path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(head, tail));
    }
    absl::Status error = absl::InvalidArgumentError(
        absl::StrCat(head, " (in ", path, ")", tail));
    return path.front() == '[' ? error : WithField(std::move(error), path);
  }
  bool Fail(absl::string_view what) {
    error_ = ErrorAtPath(absl::StrCat("the request body has ", what));
    return false;
  }
  // Red-black tree links and colour of a std::map node.
  static constexpr size_t kMapNodeBytes = 32;

  // Counts one more value taking `bytes` (beyond its own json) in memory.
  bool Count(size_t bytes) {
    if (++values_ > limits_.max_values) {
      return Fail(absl::StrCat("more than ", limits_.max_values, " values"));
    }
    // An array element also costs its slot (twice: vector growth).
    const bool in_array = !frames_.empty() && frames_.back().value->is_array();
    return Charge(sizeof(json) * (in_array ? 2 : 1) + bytes);
  }
  bool Charge(size_t bytes) {
    used_ += bytes;
    if (used_ > budget_) {
      return Fail(absl::StrCat(
          "more structure than its size allows (it would take more than ",
          budget_, " bytes parsed: ", limits_.bytes_per_body_byte,
          " x the body + ", limits_.extra_bytes, ")"));
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
  bool Add(json v, size_t bytes) {
    if (!Count(bytes)) return false;
    Place(std::move(v));
    return true;
  }
  bool Open(json container, size_t bytes) {
    if (!Count(bytes)) return false;
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
  const size_t budget_;
  size_t used_ = 0;
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
  BoundedBuilder builder(limits_, body.size());
  const bool ok = json::sax_parse(body.begin(), body.end(), &builder);
  if (!ok) {
    if (!builder.error().ok()) return builder.error();
    return absl::InvalidArgumentError("the request body is not valid JSON");
  }
  return builder.TakeRoot();
}

}  // namespace rwkv::server
