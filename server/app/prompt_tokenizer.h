// PromptTokenizer: turns request text into prompt tokens within the server's
// limits. The byte limit (max_prompt_tokens times a bound on bytes per
// token) is checked before anything scans the text, so a huge request costs
// nothing; then the token limit and the model's vocabulary. Thread-safe.
#ifndef RWKV_SERVER_APP_PROMPT_TOKENIZER_H_
#define RWKV_SERVER_APP_PROMPT_TOKENIZER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/tokenizer.h"

namespace rwkv::server {

class PromptTokenizer {
 public:
  // Bytes of text allowed per prompt token before tokenizing.
  static constexpr size_t kMaxBytesPerToken = 64;

  // `tokenizer` must outlive this.
  PromptTokenizer(const engine::Tokenizer* tokenizer, int max_prompt_tokens,
                  int vocab_size)
      : tokenizer_(tokenizer),
        max_prompt_tokens_(max_prompt_tokens),
        vocab_size_(vocab_size) {}

  // INVALID_ARGUMENT naming `field` if `text` is over the byte limit.
  absl::Status CheckBytes(absl::string_view text,
                          absl::string_view field) const;
  // The tokens of `text`: non-empty, at most max_prompt_tokens, each in the
  // model's vocabulary.
  absl::StatusOr<std::vector<int32_t>> Tokenize(absl::string_view text,
                                                absl::string_view field) const;
  const engine::Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  const engine::Tokenizer* const tokenizer_;
  const int max_prompt_tokens_;
  const int vocab_size_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_PROMPT_TOKENIZER_H_
