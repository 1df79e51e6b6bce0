// ScanJsonText: one pass over JSON text, outside any JSON parser, that
// measures what a streaming parse of it with nlohmann::json will need: the
// deepest [ / { nesting, the longest string, and the longest run the lexer
// buffers (it appends every character it reads to a buffer that is cleared
// only when a string, number or literal starts, so a long stretch of
// brackets, commas and whitespace is held whole). The parsers of
// tokenizer.json and safetensors headers use it to refuse deep nesting and
// to charge the lexer to their ParseBudget before parsing. Pure function.
#ifndef RWKV_ENGINE_JSON_TEXT_SHAPE_H_
#define RWKV_ENGINE_JSON_TEXT_SHAPE_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rwkv::engine {

struct JsonTextShape {
  int max_depth = 0;
  size_t longest_string = 0;  // raw bytes between the quotes
  size_t longest_run = 0;     // bytes between two lexer buffer resets

  // What the lexer can hold at once: its run buffer (a vector grown by
  // doubling: up to 3x the run while it grows) and its string buffer, plus
  // one copy of a string kept by the caller.
  uint64_t LexerBytes() const;
};

JsonTextShape ScanJsonText(std::string_view text);

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_JSON_TEXT_SHAPE_H_
