#include "engine/byte_tokenizer.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace rwkv::engine {

absl::StatusOr<std::vector<int32_t>> ByteTokenizer::Encode(
    std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  for (char c : text) ids.push_back(static_cast<uint8_t>(c));
  return ids;
}

absl::StatusOr<std::string> ByteTokenizer::Decode(
    absl::Span<const int32_t> ids) const {
  std::string out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || id >= kVocabSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", id, " (at position ", i,
                       ") is outside the byte tokenizer's vocabulary [0, ",
                       kVocabSize, ")"));
    }
    out.push_back(static_cast<char>(id));
  }
  return out;
}

}  // namespace rwkv::engine
