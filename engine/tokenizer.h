// Tokenizer: interface of the byte, RWKV World and GPT-NeoX BPE tokenizers,
// plus factories that pick one from a --tokenizer spec. Implementations are
// immutable; all methods are const and safe to call from many threads.
#ifndef RWKV_ENGINE_TOKENIZER_H_
#define RWKV_ENGINE_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace rwkv::engine {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Converts text to token ids. What "text" means depends on the tokenizer:
  // the byte and World tokenizers accept any bytes; the BPE tokenizer
  // requires valid UTF-8 (InvalidArgument naming the byte offset otherwise).
  virtual absl::StatusOr<std::vector<int32_t>> Encode(
      std::string_view text) const = 0;

  // Converts ids back to raw bytes, which need not be valid UTF-8 (a token
  // may hold part of a character). An id outside [0, vocab_size()) or one
  // the vocabulary does not define is an InvalidArgument error naming it.
  virtual absl::StatusOr<std::string> Decode(
      absl::Span<const int32_t> ids) const = 0;

  // One more than the largest id Encode can produce or Decode accepts.
  // Models may have more embedding rows than this (padding).
  virtual int vocab_size() const = 0;

  // "bytes", "world" or "gpt-neox".
  virtual std::string_view name() const = 0;

  // The end-of-text id, if the vocabulary has one.
  virtual std::optional<int32_t> eos_token() const = 0;

  // Builds a tokenizer from a spec: the word "bytes", the path of an RWKV
  // World vocabulary (rwkv_vocab_v20230424.txt format) or the path of a
  // Hugging Face tokenizer.json holding a byte-level BPE model. Files are
  // recognised by content, not by extension.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(std::string_view spec);

  // The tokenizer implied by a model's vocabulary size when none was named:
  // the byte tokenizer for 256; any other size is an error asking for
  // --tokenizer.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> ForVocabSize(
      int vocab_size);
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_TOKENIZER_H_
