// JsonBodyParser: parses an HTTP request body into a JSON document with its
// memory bounded by the body: nesting deeper than max_depth or more than
// max_values values is refused as soon as it is seen (a SAX parse, so
// nothing beyond the limit is built), and strings can hold no more than the
// body. nlohmann's lexer also refuses invalid UTF-8 and lone surrogates.
// Errors are INVALID_ARGUMENT naming the byte offset and, where known, the
// field being parsed ("messages[2].content"). No exceptions. Thread-safe
// (immutable).
#ifndef RWKV_SERVER_HTTP_JSON_BODY_PARSER_H_
#define RWKV_SERVER_HTTP_JSON_BODY_PARSER_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace rwkv::server {

struct JsonLimits {
  // Containers inside containers (the top-level object is depth 1).
  int max_depth = 32;
  // Values of every kind (objects, arrays, strings, numbers, ...).
  size_t max_values = 200000;
};

class JsonBodyParser {
 public:
  explicit JsonBodyParser(JsonLimits limits = {}) : limits_(limits) {}

  absl::StatusOr<nlohmann::json> Parse(absl::string_view body) const;

 private:
  const JsonLimits limits_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_JSON_BODY_PARSER_H_
