#include "engine/stream_decoder.h"

#include <utility>

#include "engine/utf8.h"

namespace rwkv::engine {

absl::StatusOr<std::string> StreamDecoder::Push(int32_t id) {
  const int32_t ids[1] = {id};
  absl::StatusOr<std::string> bytes = tokenizer_->Decode(ids);
  if (!bytes.ok()) return bytes.status();
  std::string buffer = std::move(pending_);
  buffer.append(*bytes);
  pending_.clear();
  const size_t held = Utf8IncompleteSuffixLength(buffer);
  pending_.assign(buffer, buffer.size() - held, held);
  buffer.resize(buffer.size() - held);
  if (IsValidUtf8(buffer)) return buffer;
  return SanitizeUtf8(buffer);
}

std::string StreamDecoder::Flush() {
  std::string out = SanitizeUtf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace rwkv::engine
