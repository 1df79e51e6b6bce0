// JsonBodyParser: parses an HTTP request body into a JSON document with its
// memory bounded by the body: nesting deeper than max_depth, more than
// max_values values, or a document that would take more than
// bytes_per_body_byte x the body + extra_bytes to hold (an estimate of
// every value, member, key and string the parse builds) is refused as soon
// as it is seen (a SAX parse, so nothing beyond the limit is built). nlohmann's
// lexer also refuses invalid UTF-8 and lone surrogates. Errors are
// INVALID_ARGUMENT naming the byte offset and, where known, the field being
// parsed ("messages[2].content"). No exceptions. Thread-safe (immutable).
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
  // The parsed document's estimated memory at most this many times the
  // body's size, plus extra_bytes.
  size_t bytes_per_body_byte = 4;
  size_t extra_bytes = 64 << 10;
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
