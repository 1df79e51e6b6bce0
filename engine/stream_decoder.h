// StreamDecoder: turns generated token ids into text incrementally, emitting
// only complete UTF-8 characters (a truncated one is held back).
// Thread-compatible: one per stream; the Tokenizer must outlive it.
#ifndef RWKV_ENGINE_STREAM_DECODER_H_
#define RWKV_ENGINE_STREAM_DECODER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/tokenizer.h"

namespace rwkv::engine {

class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}

  StreamDecoder(const StreamDecoder&) = delete;
  StreamDecoder& operator=(const StreamDecoder&) = delete;
  StreamDecoder(StreamDecoder&&) = default;
  StreamDecoder& operator=(StreamDecoder&&) = default;

  // Decodes `id` and returns the text it completes: always valid UTF-8.
  // Bytes that can never become valid UTF-8 are replaced by U+FFFD as soon
  // as that is known; a truncated trailing character is held back. An id
  // the tokenizer cannot decode is an error and leaves the state unchanged.
  absl::StatusOr<std::string> Push(int32_t id);

  // Returns the held-back bytes (a truncated character becomes one U+FFFD)
  // and resets the decoder. The concatenation of every Push() result and
  // Flush() equals the tokenizer's Decode() of all ids whenever that is
  // valid UTF-8.
  std::string Flush();

  // Number of bytes currently held back (0 to 3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;  // A truncated but so far valid UTF-8 character.
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_STREAM_DECODER_H_
