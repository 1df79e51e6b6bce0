// Tests for StreamDecoder: incremental decoding never emits part of a UTF-8
// character, and Push()* + Flush() equals Decode() for valid UTF-8.
#include "engine/stream_decoder.h"

#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/byte_tokenizer.h"
#include "engine/tokenizer.h"
#include "engine/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rwkv::engine {
namespace {

using ::testing::HasSubstr;

const std::string kFffd(kUtf8Replacement);

std::string SharedDir() {
  const char* env = std::getenv("RWKV_SHARED_DIR");
  if (env != nullptr && env[0] != '\0') return env;
  return RWKV_SHARED_DIR;
}

std::string PushOk(StreamDecoder& decoder, int32_t id) {
  absl::StatusOr<std::string> text = decoder.Push(id);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *std::move(text) : "<push error>";
}

// Pushes every byte of `bytes` as a byte token; returns the pieces emitted,
// with Flush() last.
std::vector<std::string> PushBytes(std::string_view bytes) {
  ByteTokenizer tok;
  StreamDecoder decoder(tok);
  std::vector<std::string> pieces;
  for (char c : bytes)
    pieces.push_back(PushOk(decoder, static_cast<uint8_t>(c)));
  pieces.push_back(decoder.Flush());
  return pieces;
}

TEST(StreamDecoderTest, HoldsBackPartialCharacters) {
  // "é" (2 bytes), "€" (3 bytes), "🙂" (4 bytes), each split into bytes.
  EXPECT_THAT(PushBytes("a\xC3\xA9"),
              ::testing::ElementsAre("a", "", "\xC3\xA9", ""));
  EXPECT_THAT(PushBytes("\xE2\x82\xAC!"),
              ::testing::ElementsAre("", "", "\xE2\x82\xAC", "!", ""));
  EXPECT_THAT(PushBytes("\xF0\x9F\x99\x82"),
              ::testing::ElementsAre("", "", "", "\xF0\x9F\x99\x82", ""));
}

TEST(StreamDecoderTest, NeverEmitsHalfACharacter) {
  const std::string text =
      "mixed: \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F"
      "\x91\xA9 caf\xC3\xA9 \xD9\xA3 end";
  std::string joined;
  for (const std::string& piece : PushBytes(text)) {
    EXPECT_TRUE(IsValidUtf8(piece)) << piece;
    joined += piece;
  }
  EXPECT_EQ(joined, text);
}

TEST(StreamDecoderTest, InvalidBytesBecomeReplacementAtOnce) {
  ByteTokenizer tok;
  StreamDecoder decoder(tok);
  EXPECT_EQ(PushOk(decoder, 0xFF), kFffd);  // Can never start a character.
  EXPECT_EQ(PushOk(decoder, 0x80), kFffd);  // Stray continuation byte.
  EXPECT_EQ(PushOk(decoder, 0xE2), "");     // Could still become valid...
  EXPECT_EQ(decoder.pending_bytes(), 1u);
  EXPECT_EQ(PushOk(decoder, 'a'), kFffd + "a");  // ...but 'a' ends it.
  EXPECT_EQ(decoder.pending_bytes(), 0u);
  EXPECT_EQ(PushOk(decoder, 0xE0), "");
  EXPECT_EQ(PushOk(decoder, 0x80), kFffd + kFffd);  // E0 80 is overlong.
  EXPECT_EQ(PushOk(decoder, 0xED), "");
  EXPECT_EQ(PushOk(decoder, 0xA0), kFffd + kFffd);  // Surrogate.
  EXPECT_EQ(decoder.Flush(), "");
}

TEST(StreamDecoderTest, FlushReplacesTruncatedCharacter) {
  ByteTokenizer tok;
  StreamDecoder decoder(tok);
  EXPECT_EQ(PushOk(decoder, 0xF0), "");
  EXPECT_EQ(PushOk(decoder, 0x9F), "");
  EXPECT_EQ(decoder.pending_bytes(), 2u);
  EXPECT_EQ(decoder.Flush(), kFffd);
  EXPECT_EQ(decoder.pending_bytes(), 0u);
  EXPECT_EQ(decoder.Flush(), "");
  EXPECT_EQ(PushOk(decoder, 'x'), "x");  // Usable after a flush.
}

TEST(StreamDecoderTest, BadIdIsAnErrorAndKeepsState) {
  ByteTokenizer tok;
  StreamDecoder decoder(tok);
  EXPECT_EQ(PushOk(decoder, 0xC3), "");
  absl::StatusOr<std::string> bad = decoder.Push(256);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("256"));
  EXPECT_EQ(decoder.pending_bytes(), 1u);
  EXPECT_EQ(PushOk(decoder, 0xA9), "\xC3\xA9");
}

TEST(StreamDecoderTest, RandomBytesMatchSanitizedDecode) {
  std::mt19937 rng(42);
  for (int trial = 0; trial < 500; ++trial) {
    std::string bytes(rng() % 40, '\0');
    for (char& c : bytes) {
      // Bias towards bytes that form (or almost form) multi-byte characters.
      const uint32_t r = rng() % 8;
      c = static_cast<char>(r < 2   ? rng() % 0x80
                            : r < 5 ? 0x80 + rng() % 0x40
                                    : 0xC0 + rng() % 0x40);
    }
    std::string joined;
    for (const std::string& piece : PushBytes(bytes)) {
      ASSERT_TRUE(IsValidUtf8(piece));
      joined += piece;
    }
    EXPECT_EQ(joined, SanitizeUtf8(bytes));
    if (IsValidUtf8(bytes)) {
      EXPECT_EQ(joined, bytes);
    }
  }
}

TEST(StreamDecoderTest, WorldTokensSplitCharacters) {
  const std::string path = SharedDir() + "/tokenizers/rwkv_vocab_v20230424.txt";
  if (!std::ifstream(path).good()) {
    GTEST_SKIP() << "World vocabulary not found at " << path
                 << " (set RWKV_SHARED_DIR)";
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::Load(path);
  ASSERT_TRUE(tok.ok()) << tok.status();
  // U+1F642 is two World tokens (3319, 2417; see world-cases.json); neither
  // decodes to a whole character, so the first push must emit nothing.
  StreamDecoder decoder(**tok);
  EXPECT_EQ(PushOk(decoder, 3319), "");
  EXPECT_GT(decoder.pending_bytes(), 0u);
  EXPECT_EQ(PushOk(decoder, 2417), "\xF0\x9F\x99\x82");
  EXPECT_EQ(PushOk(decoder, 0), "");  // <|endoftext|> decodes to nothing.
  EXPECT_EQ(decoder.Flush(), "");

  const std::string text =
      "\xE3\x81\x93\xE3\x82\x93\xE3\x81\xAB\xE3\x81\xA1\xE3\x81\xAF "
      "\xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x99\x82\xF0\x9F\x91\x8D\xF0\x9F\x8F"
      "\xBD caf\xC3\xA9";
  absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode(text);
  ASSERT_TRUE(ids.ok()) << ids.status();
  std::string joined;
  for (int32_t id : *ids) {
    const std::string piece = PushOk(decoder, id);
    EXPECT_TRUE(IsValidUtf8(piece));
    joined += piece;
  }
  joined += decoder.Flush();
  EXPECT_EQ(joined, text);
}

}  // namespace
}  // namespace rwkv::engine
