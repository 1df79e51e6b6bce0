// ByteTokenizer: the trivial 256-entry vocabulary where token id == byte
// value, used by byte-level models. Stateless and thread-safe.
#ifndef RWKV_ENGINE_BYTE_TOKENIZER_H_
#define RWKV_ENGINE_BYTE_TOKENIZER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/tokenizer.h"

namespace rwkv::engine {

class ByteTokenizer : public Tokenizer {
 public:
  static constexpr int kVocabSize = 256;

  ByteTokenizer() = default;

  // Never fails: every byte is a token.
  absl::StatusOr<std::vector<int32_t>> Encode(
      std::string_view text) const override;
  absl::StatusOr<std::string> Decode(
      absl::Span<const int32_t> ids) const override;
  int vocab_size() const override { return kVocabSize; }
  std::string_view name() const override { return "bytes"; }
  std::optional<int32_t> eos_token() const override { return std::nullopt; }
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_BYTE_TOKENIZER_H_
