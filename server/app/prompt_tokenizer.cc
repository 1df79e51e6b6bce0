#include "server/app/prompt_tokenizer.h"

#include <string_view>

#include "absl/strings/str_cat.h"

namespace rwkv::server {

absl::Status PromptTokenizer::CheckBytes(absl::string_view text,
                                         absl::string_view field) const {
  const size_t max_bytes =
      static_cast<size_t>(max_prompt_tokens_) * kMaxBytesPerToken;
  if (text.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is too long: ", text.size(), " bytes (limit ",
                     max_bytes, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> PromptTokenizer::Tokenize(
    absl::string_view text, absl::string_view field) const {
  if (absl::Status s = CheckBytes(text, field); !s.ok()) return s;
  absl::StatusOr<std::vector<int32_t>> tokens =
      tokenizer_->Encode(std::string_view(text.data(), text.size()));
  if (!tokens.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", tokens.status().message()));
  }
  if (tokens->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " has no tokens"));
  }
  if (static_cast<int64_t>(tokens->size()) > max_prompt_tokens_) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is too long: ", tokens->size(), " tokens (limit ",
                     max_prompt_tokens_, ", --max-prompt-tokens)"));
  }
  for (int32_t t : *tokens) {
    if (t < 0 || t >= vocab_size_) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": token ", t, " is outside the model's vocabulary"));
    }
  }
  return tokens;
}

}  // namespace rwkv::server
