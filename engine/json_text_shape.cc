#include "engine/json_text_shape.h"

#include <algorithm>

namespace rwkv::engine {

JsonTextShape ScanJsonText(std::string_view text) {
  JsonTextShape shape;
  int depth = 0;
  size_t token = 0;
  bool in_string = false, escape = false;
  for (char c : text) {
    ++token;
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      shape.max_depth = std::max(shape.max_depth, ++depth);
      token = 0;
    } else if (c == ']' || c == '}' || c == ',' || c == ':') {
      if (c == ']' || c == '}') --depth;
      shape.longest_token = std::max(shape.longest_token, token);
      token = 0;
    }
  }
  shape.longest_token = std::max(shape.longest_token, token);
  return shape;
}

}  // namespace rwkv::engine
