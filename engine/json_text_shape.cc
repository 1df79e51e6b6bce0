#include "engine/json_text_shape.h"

#include <algorithm>

#include "engine/parse_budget.h"

namespace rwkv::engine {
namespace {

bool StartsScalar(char c) {
  return c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n';
}

bool InScalar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z') || c == '.' || c == '+' || c == '-';
}

}  // namespace

uint64_t JsonTextShape::LexerBytes() const {
  return 3 * (uint64_t{longest_run} + ParseBudget::kAllocOverhead) +
         2 * ParseBudget::StringBytes(longest_string);
}

JsonTextShape ScanJsonText(std::string_view text) {
  JsonTextShape shape;
  int depth = 0;
  size_t run = 0, string = 0;
  bool in_string = false, escape = false;
  char previous = ' ';
  for (char c : text) {
    if (in_string) {
      ++run;
      ++string;
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
        shape.longest_string = std::max(shape.longest_string, string - 1);
      }
      previous = c;
      continue;
    }
    if (c == '"') {
      in_string = true;
      run = 1;
      string = 0;
    } else if (StartsScalar(c) && !InScalar(previous)) {
      run = 1;
    } else {
      ++run;
    }
    if (c == '[' || c == '{') {
      shape.max_depth = std::max(shape.max_depth, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
    shape.longest_run = std::max(shape.longest_run, run);
    previous = c;
  }
  shape.longest_run = std::max(shape.longest_run, run);
  if (in_string) shape.longest_string = std::max(shape.longest_string, string);
  return shape;
}

}  // namespace rwkv::engine
