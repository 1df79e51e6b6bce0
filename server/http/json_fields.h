// JsonFields: typed reads of a JSON object's members for the HTTP front's
// request parsers. Absent and null members read as nullopt; a member of the
// wrong type is INVALID_ARGUMENT naming its path ("messages[2].role must be
// a string") with the path attached as the error's OpenAI "param"
// (server/app/field_error.h). Thread-compatible; borrows the object.
#ifndef RWKV_SERVER_HTTP_JSON_FIELDS_H_
#define RWKV_SERVER_HTTP_JSON_FIELDS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "server/app/field_error.h"

namespace rwkv::server {

class JsonFields {
 public:
  // `object` (a JSON object) must outlive this; `path` is its own path (""
  // for the request body).
  JsonFields(const nlohmann::json& object, std::string path)
      : object_(object), path_(std::move(path)) {}

  // The member's path, e.g. "stream_options.include_usage".
  std::string Path(absl::string_view name) const;
  // The member, or null when it is absent or JSON null.
  const nlohmann::json* Find(absl::string_view name) const;

  absl::StatusOr<std::optional<std::string>> String(
      absl::string_view name) const;
  absl::StatusOr<std::optional<bool>> Bool(absl::string_view name) const;
  // A number in [lo, hi].
  absl::StatusOr<std::optional<double>> Number(absl::string_view name,
                                               double lo, double hi) const;
  // An integer in [lo, hi] (a float with no fraction counts).
  absl::StatusOr<std::optional<int64_t>> Integer(absl::string_view name,
                                                 int64_t lo, int64_t hi) const;
  // An object member read the same way.
  absl::StatusOr<std::optional<JsonFields>> Object(
      absl::string_view name) const;

 private:
  const nlohmann::json& object_;
  std::string path_;
};

// "a string", "an array", ... for messages.
const char* JsonTypeName(const nlohmann::json& value);

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_JSON_FIELDS_H_
