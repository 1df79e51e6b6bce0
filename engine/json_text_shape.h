// ScanJsonText: one pass over JSON text, outside any JSON parser, that
// measures what a streaming parse of it will need: the deepest [ / {
// nesting and the longest token (string, number or literal), which the
// lexer buffers whole. The parsers of tokenizer.json and safetensors headers
// use it to refuse deep nesting and to charge the lexer to their ParseBudget
// before parsing. Pure function.
#ifndef RWKV_ENGINE_JSON_TEXT_SHAPE_H_
#define RWKV_ENGINE_JSON_TEXT_SHAPE_H_

#include <cstddef>
#include <string_view>

namespace rwkv::engine {

struct JsonTextShape {
  int max_depth = 0;
  size_t longest_token = 0;  // bytes, quotes and escapes included
};

JsonTextShape ScanJsonText(std::string_view text);

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_JSON_TEXT_SHAPE_H_
