// Bits per byte of a model on a text: how well it predicts the text, the
// measure the project reports for quantized weights (README "Performance").
// Each text is scored from a fresh state: every token after the first is
// charged -log2 p(token | the tokens before it), and the sum is divided by
// the bytes of those tokens. Texts are run side by side through the batched
// step (bit-identical to one at a time on the fp32 CPU path).
#ifndef RWKV_TOOLS_BITS_PER_BYTE_H_
#define RWKV_TOOLS_BITS_PER_BYTE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "engine/tokenizer.h"

namespace rwkv::tools {

struct BitsPerByte {
  int64_t texts = 0;
  int64_t tokens_scored = 0;
  int64_t bytes_scored = 0;
  double bits = 0;  // total
  double bits_per_byte() const {
    return bytes_scored > 0 ? bits / static_cast<double>(bytes_scored) : 0;
  }
};

// Texts with fewer than two tokens add nothing. `batch` texts run at once.
absl::StatusOr<BitsPerByte> MeasureBitsPerByte(
    engine::Engine& engine, const engine::Tokenizer& tokenizer,
    const std::vector<std::string>& texts, int batch = 32);

// The "text" of each line of a JSONL file ({"text": "..."} per line; blank
// lines skipped), at most max_texts of them (0: all). Errors name the file
// and the line.
absl::StatusOr<std::vector<std::string>> ReadJsonlTexts(const std::string& path,
                                                        int64_t max_texts = 0);

}  // namespace rwkv::tools

#endif  // RWKV_TOOLS_BITS_PER_BYTE_H_
