// Tests for the UTF-8 helpers, the byte / RWKV World / GPT-NeoX BPE
// tokenizers and the Tokenizer factories. Tests that need the shared
// tokenizer files skip when they are absent (set RWKV_SHARED_DIR to point
// elsewhere).
#include "engine/tokenizer.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/bpe_tokenizer.h"
#include "engine/byte_tokenizer.h"
#include "engine/utf8.h"
#include "engine/world_tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace rwkv::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string SharedDir() {
  const char* env = std::getenv("RWKV_SHARED_DIR");
  if (env != nullptr && env[0] != '\0') return env;
  return RWKV_SHARED_DIR;
}

std::string WorldVocabPath() {
  return SharedDir() + "/tokenizers/rwkv_vocab_v20230424.txt";
}
std::string NeoxJsonPath() {
  return SharedDir() + "/tokenizers/20B_tokenizer.json";
}
std::string WorldCasesPath() {
  return SharedDir() + "/tokenizers/world-cases.json";
}

bool FileExists(const std::string& path) {
  return std::ifstream(path, std::ios::binary).good();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A scratch directory removed with its files at the end of the test.
class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        absl::StrCat(tmp != nullptr && tmp[0] ? tmp : "/tmp", "/tokXXXXXX");
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() {
    for (const std::string& f : files_) std::remove(f.c_str());
    if (!path_.empty()) rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& contents) {
    const std::string path = path_ + "/" + name;
    std::ofstream(path, std::ios::binary) << contents;
    files_.push_back(path);
    return path;
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

// Encode/Decode that report failures and return plain values (safe to use
// in range-for and matchers, unlike *StatusOr temporaries).
std::vector<int32_t> Enc(const Tokenizer& tok, std::string_view text) {
  absl::StatusOr<std::vector<int32_t>> ids = tok.Encode(text);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *std::move(ids) : std::vector<int32_t>{-999};
}

std::string Dec(const Tokenizer& tok, absl::Span<const int32_t> ids) {
  absl::StatusOr<std::string> text = tok.Decode(ids);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *std::move(text) : "<decode error>";
}

// Strings every tokenizer must round-trip (valid UTF-8, NFC).
const std::vector<std::string>& RoundTripStrings() {
  static const auto* const strings = new std::vector<std::string>{
      "",
      "a",
      "Hello, world! The quick brown fox jumps over the lazy dog.",
      "don't we'll they've I'm she'd it's you're 'quoted' ''",
      "emoji: \xF0\x9F\x99\x82\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD "
      "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91"
      "\xA7",
      "CJK: \xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C"
      "\xE3\x80\x82 \xE3\x81\x93\xE3\x82\x93\xE3\x81\xAB\xE3\x81\xA1\xE3\x81"
      "\xAF \xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4",
      // Precomposed e-acute, then a combining mark with no precomposed form
      // (q + U+0301), Devanagari and Thai with combining vowel signs.
      "caf\xC3\xA9 q\xCC\x81 \xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8\xE0\xA5"
      "\x8D\xE0\xA4\xA4\xE0\xA5\x87 \xE0\xB8\x81\xE0\xB9\x88\xE0\xB8\xB2",
      std::string("control \x01\x02\x1b[0m \x7f tab\there\r\nnul:") +
          std::string(1, '\0') + "end",
      std::string(1000, ' '),
      "a" + std::string(30, ' ') + "b\n\n\n   \t\t  x  ",
      std::string(300, '\n') + "tail",
      "numbers 1234567890 \xD9\xA3\xD9\xA4 \xE2\x85\xA0\xE2\x85\xA1 3.14e-10",
      "code:\n    def f(x):\n        return x**2  # comment\n",
      "\xE2\x80\x83wide\xE3\x80\x80space\xC2\xA0nbsp\xE2\x80\xA8ls",
      "<|endoftext|> inside <|endoftext|>text<|padding|>",
      std::string(5000, 'a'),
      std::string(2000, '='),
  };
  return *strings;
}

// --- UTF-8 helpers -----------------------------------------------------------

TEST(Utf8Test, ScanValidCharacters) {
  Utf8Scan s = ScanUtf8Char("A");
  EXPECT_EQ(s.status, Utf8ScanStatus::kValid);
  EXPECT_EQ(s.length, 1);
  EXPECT_EQ(s.code_point, U'A');
  s = ScanUtf8Char("\xC3\xA9x");
  EXPECT_EQ(s.status, Utf8ScanStatus::kValid);
  EXPECT_EQ(s.length, 2);
  EXPECT_EQ(s.code_point, 0xE9u);
  s = ScanUtf8Char("\xE2\x82\xAC");
  EXPECT_EQ(s.length, 3);
  EXPECT_EQ(s.code_point, 0x20ACu);
  s = ScanUtf8Char("\xF4\x8F\xBF\xBF");
  EXPECT_EQ(s.status, Utf8ScanStatus::kValid);
  EXPECT_EQ(s.length, 4);
  EXPECT_EQ(s.code_point, 0x10FFFFu);
}

TEST(Utf8Test, ScanIncompleteAndInvalid) {
  EXPECT_EQ(ScanUtf8Char("").status, Utf8ScanStatus::kIncomplete);
  Utf8Scan s = ScanUtf8Char("\xF0\x9F\x99");
  EXPECT_EQ(s.status, Utf8ScanStatus::kIncomplete);
  EXPECT_EQ(s.length, 3);
  s = ScanUtf8Char("\x80");
  EXPECT_EQ(s.status, Utf8ScanStatus::kInvalid);
  EXPECT_EQ(s.length, 1);
  s = ScanUtf8Char("\xC0\xAF");  // Overlong '/'.
  EXPECT_EQ(s.status, Utf8ScanStatus::kInvalid);
  EXPECT_EQ(s.length, 1);
  s = ScanUtf8Char("\xED\xA0\x80");  // Surrogate U+D800.
  EXPECT_EQ(s.status, Utf8ScanStatus::kInvalid);
  EXPECT_EQ(s.length, 1);
  s = ScanUtf8Char("\xF4\x90\x80\x80");  // U+110000.
  EXPECT_EQ(s.status, Utf8ScanStatus::kInvalid);
  EXPECT_EQ(s.length, 1);
  s = ScanUtf8Char("\xE2\x82x");  // Maximal subpart is E2 82.
  EXPECT_EQ(s.status, Utf8ScanStatus::kInvalid);
  EXPECT_EQ(s.length, 2);
}

TEST(Utf8Test, ValidationAndPrefixes) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain \xE4\xBD\xA0\xF0\x9F\x99\x82"));
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8("ab\xE4\xBD"));
  EXPECT_EQ(ValidUtf8PrefixLength("ab\xE4\xBD"), 2u);
  EXPECT_EQ(ValidUtf8PrefixLength("abc\xC3\xA9\xFEz"), 5u);

  EXPECT_EQ(Utf8IncompleteSuffixLength(""), 0u);
  EXPECT_EQ(Utf8IncompleteSuffixLength("abc"), 0u);
  EXPECT_EQ(Utf8IncompleteSuffixLength("ab\xC3"), 1u);
  EXPECT_EQ(Utf8IncompleteSuffixLength("ab\xE4\xBD"), 2u);
  EXPECT_EQ(Utf8IncompleteSuffixLength("\xF0\x9F\x99"), 3u);
  EXPECT_EQ(Utf8IncompleteSuffixLength("\xF0\x9F\x99\x82"), 0u);
  EXPECT_EQ(Utf8IncompleteSuffixLength("\x80\x80\x80"), 0u);
  EXPECT_EQ(Utf8IncompleteSuffixLength("a\xE0\x80"), 0u);  // Never valid.
  EXPECT_EQ(Utf8IncompleteSuffixLength("a\xFF"), 0u);
}

TEST(Utf8Test, SanitizeMatchesPythonReplace) {
  // Expected values are bytes.decode("utf-8", "replace") in Python 3.
  const std::string r(kUtf8Replacement);
  EXPECT_EQ(SanitizeUtf8("ok \xC3\xA9"), "ok \xC3\xA9");
  EXPECT_EQ(SanitizeUtf8("\xE0\x80"
                         "abc"),
            r + r + "abc");
  EXPECT_EQ(SanitizeUtf8("\xF0\x9F\x98"
                         "a"),
            r + "a");
  EXPECT_EQ(SanitizeUtf8("\xF0\x9F\x98"), r);
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), r + r + r);
  EXPECT_EQ(SanitizeUtf8("\xC0\xAF\xFF"), r + r + r);
  EXPECT_EQ(SanitizeUtf8("a\x80\x80"
                         "b"),
            "a" + r + r + "b");
}

TEST(Utf8Test, AppendUtf8) {
  std::string s;
  AppendUtf8(U'A', &s);
  AppendUtf8(0xE9, &s);
  AppendUtf8(0x4F60, &s);
  AppendUtf8(0x1F642, &s);
  EXPECT_EQ(s, "A\xC3\xA9\xE4\xBD\xA0\xF0\x9F\x99\x82");
  std::string bad;
  AppendUtf8(0xD800, &bad);
  AppendUtf8(0x110000, &bad);
  EXPECT_EQ(bad, std::string(kUtf8Replacement) + std::string(kUtf8Replacement));
}

// --- Byte tokenizer and factories ------------------------------------------

TEST(ByteTokenizerTest, EveryByteIsItsOwnToken) {
  ByteTokenizer tok;
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  absl::StatusOr<std::vector<int32_t>> ids = tok.Encode(all);
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_EQ(ids->size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ((*ids)[b], b);
  absl::StatusOr<std::string> text = tok.Decode(*ids);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, all);
  EXPECT_EQ(tok.vocab_size(), 256);
  EXPECT_EQ(tok.name(), "bytes");
  EXPECT_FALSE(tok.eos_token().has_value());
  for (const std::string& s : RoundTripStrings()) {
    EXPECT_EQ(Dec(tok, Enc(tok, s)), s);
  }
}

TEST(ByteTokenizerTest, OutOfRangeIdsAreErrors) {
  ByteTokenizer tok;
  for (int32_t id : {256, -1, 1 << 30}) {
    const std::vector<int32_t> ids = {65, id};
    absl::StatusOr<std::string> text = tok.Decode(ids);
    ASSERT_FALSE(text.ok());
    EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(text.status().message(), HasSubstr(absl::StrCat(id)));
  }
}

TEST(TokenizerFactoryTest, BytesSpecAndVocabSize) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::Load("bytes");
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->name(), "bytes");
  tok = Tokenizer::ForVocabSize(256);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->vocab_size(), 256);
  for (int size : {65536, 50277, 0, -5}) {
    tok = Tokenizer::ForVocabSize(size);
    ASSERT_FALSE(tok.ok());
    EXPECT_THAT(tok.status().message(), HasSubstr("--tokenizer"));
    EXPECT_THAT(tok.status().message(), HasSubstr(absl::StrCat(size)));
  }
}

TEST(TokenizerFactoryTest, BadSpecsNameTheProblem) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok =
      Tokenizer::Load("/nonexistent/dir/vocab.txt");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(tok.status().message(), HasSubstr("/nonexistent/dir/vocab.txt"));

  EXPECT_FALSE(Tokenizer::Load("").ok());

  TempDir dir;
  const std::string empty = dir.Write("empty.txt", "");
  tok = Tokenizer::Load(empty);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr(empty));
  EXPECT_THAT(tok.status().message(), HasSubstr("empty"));

  tok = Tokenizer::Load(dir.path());  // A directory.
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr(dir.path()));

  const std::string garbage = dir.Write("garbage.bin", "\x89PNG\r\n\x1a\n");
  tok = Tokenizer::Load(garbage);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr(garbage));
  EXPECT_THAT(tok.status().message(), HasSubstr("not a recognised"));
}

// --- RWKV World tokenizer --------------------------------------------------

// Vocabulary lines for all 256 single bytes (id = byte + 1), as bytes
// literals.
std::string ByteLines() {
  std::string out;
  for (int b = 0; b < 256; ++b) {
    absl::StrAppendFormat(&out, "%d b'\\x%02x' 1\n", b + 1, b);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadWorldText(
    TempDir* dir, const std::string& contents) {
  return Tokenizer::Load(dir->Write("vocab.txt", contents));
}

TEST(WorldTokenizerParseTest, PythonLiteralEscapes) {
  TempDir dir;
  const std::string vocab = ByteLines() +
                            "300 '\\u00e9t\\xe9' 5\n"     // str \x is U+00E9.
                            "301 b'\\xc3\\xa9\\x00' 3\n"  // bytes.
                            "302 '\\\\' 1\n"              // backslash.
                            "303 \"it's\" 4\n"            // double quotes.
                            "304 '\\'\\\"' 2\n"           // \' and \".
                            "305 '\\n\\t\\r\\x0b\\x0c' 5\n"  // controls.
                            "306 '\\101\\7' 2\n"             // octal.
                            "307 '\\U0001f642' 4\n"          // \U.
                            "308 b'\\u00e9' 6\n"             // not an escape.
                            "309 '\\d' 2\n"                  // unknown escape.
                            "310 '\xE4\xBD\xA0 \xE5\xA5\xBD' 7\n"  // raw UTF-8.
                            "311 ' ' 1\n"
                            "\n";  // A blank line is ignored.
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadWorldText(&dir, vocab);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->name(), "world");
  EXPECT_EQ((*tok)->vocab_size(), 312);
  const std::vector<std::pair<int32_t, std::string>> expected = {
      {300, "\xC3\xA9t\xC3\xA9"},
      {301, std::string("\xC3\xA9\0", 3)},
      {302, "\\"},
      {303, "it's"},
      {304, "'\""},
      {305, "\n\t\r\v\f"},
      {306, "A\a"},
      {307, "\xF0\x9F\x99\x82"},
      {308, "\\u00e9"},
      {309, "\\d"},
      {310, "\xE4\xBD\xA0 \xE5\xA5\xBD"},
      {311, " "},
  };
  for (const auto& [id, bytes] : expected) {
    const std::vector<int32_t> ids = {id};
    absl::StatusOr<std::string> text = (*tok)->Decode(ids);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, bytes) << "id " << id;
  }
  // Ids 312 and up and gaps (257..299) are not in the vocabulary.
  for (int32_t id : {312, 257, 299, -1}) {
    const std::vector<int32_t> ids = {id};
    absl::StatusOr<std::string> text = (*tok)->Decode(ids);
    ASSERT_FALSE(text.ok()) << id;
    EXPECT_THAT(text.status().message(), HasSubstr(absl::StrCat(id)));
  }
  // Greedy longest match uses the new tokens.
  absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode("it's \\d");
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre(303, 311, 309));
}

TEST(WorldTokenizerParseTest, MalformedFilesAreErrors) {
  struct Case {
    std::string name;
    std::string contents;
    std::string message;  // Expected in the error.
  };
  const std::vector<Case> cases = {
      {"unterminated literal", ByteLines() + "300 'abc 3\n", ":257: "},
      {"bare word", ByteLines() + "300 abc 3\n", "quoted"},
      {"truncated hex escape", ByteLines() + "300 '\\x4' 1\n", "\\xXX"},
      {"surrogate", ByteLines() + "300 '\\ud800' 3\n", "UTF-8"},
      {"non-ASCII in bytes", ByteLines() + "300 b'\xC3\xA9' 2\n", "bytes"},
      {"wrong length column", ByteLines() + "300 'abc' 4\n",
       "3 bytes long but its length column says 4"},
      {"duplicate id", ByteLines() + "300 'ab' 2\n300 'cd' 2\n",
       "duplicate token id 300"},
      {"id zero", "0 'a' 1\n" + ByteLines(), "reserved"},
      {"huge id", ByteLines() + "99999999 'ab' 2\n", "99999999"},
      {"overflowing id", ByteLines() + "99999999999999999999 'ab' 2\n",
       "bad token id"},
      {"missing length", ByteLines() + "300 'ab'\n", ":257: "},
      {"negative length", ByteLines() + "300 'ab' -2\n", "bad byte length"},
      {"invalid UTF-8 line", ByteLines() + "300 '\xFF' 1\n", "UTF-8"},
      {"missing single bytes", "1 'a' 1\n2 'b' 1\n", "byte 0x00"},
      {"empty token", ByteLines() + "300 '' 0\n", "empty"},
      {"only blank lines", "\n\n  \n", "empty"},
  };
  for (const Case& c : cases) {
    TempDir dir;
    const std::string path = dir.Write("vocab.txt", c.contents);
    absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::Load(path);
    ASSERT_FALSE(tok.ok()) << c.name;
    EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument)
        << c.name;
    EXPECT_THAT(tok.status().message(), HasSubstr(path)) << c.name;
    EXPECT_THAT(tok.status().message(), HasSubstr(c.message)) << c.name;
  }
}

TEST(WorldTokenizerParseTest, HostileInputsDoNotCrash) {
  std::mt19937 rng(1234);
  const std::string base = ByteLines();
  for (int trial = 0; trial < 300; ++trial) {
    std::string contents = base + "300 'hello' 5\n301 b'\\xff\\x00' 2\n";
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = base.size() + rng() % (contents.size() - base.size());
      contents[pos] = static_cast<char>(rng() % 256);
    }
    absl::StatusOr<std::unique_ptr<WorldTokenizer>> tok =
        WorldTokenizer::FromString(contents, "fuzz");
    if (tok.ok()) {
      EXPECT_EQ(Dec(**tok, Enc(**tok, "hello \xFF")), "hello \xFF");
    } else {
      EXPECT_THAT(tok.status().message(), HasSubstr("fuzz:"));
    }
  }
}

class WorldTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!FileExists(WorldVocabPath())) return;
    absl::StatusOr<std::unique_ptr<Tokenizer>> tok =
        Tokenizer::Load(WorldVocabPath());
    ASSERT_TRUE(tok.ok()) << tok.status();
    tokenizer_ = tok->release();
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }
  void SetUp() override {
    if (tokenizer_ == nullptr) {
      GTEST_SKIP() << "World vocabulary not found at " << WorldVocabPath()
                   << " (set RWKV_SHARED_DIR)";
    }
  }
  static const Tokenizer& tok() { return *tokenizer_; }

  static Tokenizer* tokenizer_;
};
Tokenizer* WorldTokenizerTest::tokenizer_ = nullptr;

TEST_F(WorldTokenizerTest, Properties) {
  EXPECT_EQ(tok().name(), "world");
  EXPECT_EQ(tok().vocab_size(), 65530);
  EXPECT_EQ(tok().eos_token(), std::optional<int32_t>(0));
  const std::vector<int32_t> eos = {0};
  EXPECT_EQ(Dec(tok(), eos), "");
}

TEST_F(WorldTokenizerTest, PublicCases) {
  if (!FileExists(WorldCasesPath())) {
    GTEST_SKIP() << "World cases not found at " << WorldCasesPath();
  }
  const nlohmann::json cases =
      nlohmann::json::parse(ReadFile(WorldCasesPath()))["cases"];
  ASSERT_GE(cases.size(), 5u);
  for (const nlohmann::json& c : cases) {
    const std::string text = c["text"].get<std::string>();
    const std::vector<int32_t> expected = c["ids"].get<std::vector<int32_t>>();
    absl::StatusOr<std::vector<int32_t>> ids = tok().Encode(text);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, expected) << text;
    EXPECT_EQ(Dec(tok(), expected), text);
  }
}

TEST_F(WorldTokenizerTest, KnownTokens) {
  // Single bytes are ids byte + 1; the last two lines of the file are 80
  // '-' (65528) and 128 spaces (65529); 65527 is 80 '#'.
  EXPECT_THAT(Enc(tok(), std::string(1, '\0')), ElementsAre(1));
  EXPECT_THAT(Enc(tok(), "\xFF"), ElementsAre(256));
  EXPECT_THAT(Enc(tok(), std::string(128, ' ')), ElementsAre(65529));
  EXPECT_THAT(Enc(tok(), std::string(80, '-')), ElementsAre(65528));
  EXPECT_THAT(Enc(tok(), std::string(80, '#')), ElementsAre(65527));
  EXPECT_THAT(Enc(tok(), std::string(256, ' ')), ElementsAre(65529, 65529));
  EXPECT_TRUE(Enc(tok(), "").empty());
}

TEST_F(WorldTokenizerTest, RoundTrips) {
  for (const std::string& s : RoundTripStrings()) {
    absl::StatusOr<std::vector<int32_t>> ids = tok().Encode(s);
    ASSERT_TRUE(ids.ok()) << ids.status();
    absl::StatusOr<std::string> back = tok().Decode(*ids);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, s);
    for (int32_t id : *ids) {
      EXPECT_GT(id, 0);
      EXPECT_LT(id, tok().vocab_size());
    }
  }
}

TEST_F(WorldTokenizerTest, InvalidUtf8AndRandomBytesRoundTrip) {
  const std::string bad = "\xFF\xFE\x80 half \xE4\xBD and \xC0\xAF";
  EXPECT_EQ(Dec(tok(), Enc(tok(), bad)), bad);
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::string s(rng() % 200, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    EXPECT_EQ(Dec(tok(), Enc(tok(), s)), s);
  }
}

TEST_F(WorldTokenizerTest, OutOfRangeIdsAreErrors) {
  for (int32_t id : {65530, -1, 1 << 30}) {
    const std::vector<int32_t> ids = {1, id};
    absl::StatusOr<std::string> text = tok().Decode(ids);
    ASSERT_FALSE(text.ok());
    EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(text.status().message(),
                HasSubstr(absl::StrCat("token id ", id)));
  }
}

// --- GPT-NeoX BPE tokenizer ------------------------------------------------

// GPT-2 byte-level symbol for a byte, as UTF-8.
std::string ByteSymbol(int b) {
  const bool printable =
      (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  int cp = b;
  if (!printable) {
    int extra = 0;
    for (int x = 0; x < b; ++x) {
      if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE)) {
        ++extra;
      }
    }
    cp = 256 + extra;
  }
  std::string s;
  AppendUtf8(static_cast<char32_t>(cp), &s);
  return s;
}

// A small byte-level tokenizer.json: ids 0..255 are the byte symbols (byte
// b has id b), `extra` tokens follow from 256 in order.
nlohmann::json TinyTokenizerJson(const std::vector<std::string>& extra,
                                 const std::vector<std::string>& merges) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteSymbol(b)] = b;
  for (size_t i = 0; i < extra.size(); ++i) vocab[extra[i]] = 256 + i;
  return {
      {"version", "1.0"},
      {"added_tokens", nlohmann::json::array()},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
  };
}

std::unique_ptr<BpeTokenizer> TinyBpe(const nlohmann::json& j) {
  absl::StatusOr<std::unique_ptr<BpeTokenizer>> tok =
      BpeTokenizer::FromJson(j.dump(), "tiny.json");
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? *std::move(tok) : nullptr;
}

TEST(BpeTokenizerTinyTest, MergesApplyByRank) {
  // "e l" (rank 0) beats "h e" (rank 1): "hel" -> "h" "el".
  auto tok = TinyBpe(TinyTokenizerJson({"el", "he"}, {"e l", "h e"}));
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "hel"), ElementsAre('h', 256));
  // Reversed ranks: "he" "l".
  tok = TinyBpe(TinyTokenizerJson({"el", "he"}, {"h e", "e l"}));
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "hel"), ElementsAre(257, 'l'));
  // Chained merges, and the leftmost of equal-rank pairs first: "aaa" ->
  // "aa" "a".
  tok = TinyBpe(TinyTokenizerJson({"ll", "he", "hell", "hello", "aa"},
                                  {"l l", "h e", "he ll", "hell o", "a a"}));
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "hello"), ElementsAre(259));
  EXPECT_THAT(Enc(*tok, "aaa"), ElementsAre(260, 'a'));
  EXPECT_THAT(Enc(*tok, "aaaa"), ElementsAre(260, 260));
  EXPECT_EQ(Dec(*tok, std::vector<int32_t>{259, 260}), "helloaa");
  EXPECT_EQ(tok->vocab_size(), 261);
  EXPECT_FALSE(tok->eos_token().has_value());
}

TEST(BpeTokenizerTinyTest, PreTokenizerRegexBoundaries) {
  const std::string sp = ByteSymbol(' ');   // "Ġ"
  const std::string nl = ByteSymbol('\n');  // "Ċ"
  // Every merge below would cross a GPT-2 regex boundary unless the
  // pieces are split as the regex says.
  auto tok = TinyBpe(
      TinyTokenizerJson({"'t", "n'", sp + "a", sp + sp, "a1", sp + "1", "1.",
                         sp + ".", nl + sp, "'S"},
                        {"' t", "n '", sp + " a", sp + " " + sp, "a 1",
                         sp + " 1", "1 .", sp + " .", nl + " " + sp, "' S"}));
  ASSERT_NE(tok, nullptr);
  // Contractions split off: "n" "'t".
  EXPECT_THAT(Enc(*tok, "n't"), ElementsAre('n', 256));
  // Contractions are case-sensitive: "'S" is punctuation then a letter.
  EXPECT_THAT(Enc(*tok, "'S"), ElementsAre('\'', 'S'));
  // " ?\p{L}+": the space joins the following word.
  EXPECT_THAT(Enc(*tok, " a"), ElementsAre(258));
  // Letters and digits are separate pieces: "a" "1".
  EXPECT_THAT(Enc(*tok, "a1"), ElementsAre('a', '1'));
  // " ?\p{N}+" then " ?[^\s\p{L}\p{N}]+": " 1" "." -> ids.
  EXPECT_THAT(Enc(*tok, " 1."), ElementsAre(261, '.'));
  // "\s+(?!\S)": of three spaces before a word, two form a piece and the
  // last joins the word: "  " " a".
  EXPECT_THAT(Enc(*tok, "   a"), ElementsAre(259, 258));
  // Trailing whitespace is one piece.
  EXPECT_THAT(Enc(*tok, "a  "), ElementsAre('a', 259));
  // "\n a": the newline alone, then " a".
  EXPECT_THAT(Enc(*tok, "\n a"), ElementsAre('\n', 258));
  // "\n  a": "\n " (whitespace run minus the last), then " a".
  EXPECT_THAT(Enc(*tok, "\n  a"), ElementsAre(264, 258));
  // " ." is one piece.
  EXPECT_THAT(Enc(*tok, "x ."), ElementsAre('x', 263));
}

TEST(BpeTokenizerTinyTest, AddedTokens) {
  nlohmann::json j = TinyTokenizerJson({"ab"}, {"a b"});
  j["added_tokens"] = {
      {{"id", 300},
       {"content", "<|endoftext|>"},
       {"special", true},
       {"normalized", false}},
      {{"id", 301},
       {"content", "ab"},
       {"single_word", true},
       {"normalized", true}},
  };
  auto tok = TinyBpe(j);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->eos_token(), std::optional<int32_t>(300));
  EXPECT_EQ(tok->vocab_size(), 302);
  EXPECT_THAT(Enc(*tok, "x<|endoftext|>y"), ElementsAre('x', 300, 'y'));
  // single_word: "ab" alone is the added token, inside a word it is not.
  EXPECT_THAT(Enc(*tok, "ab"), ElementsAre(301));
  EXPECT_THAT(Enc(*tok, "xab"), ElementsAre('x', 256));
  EXPECT_THAT(Enc(*tok, "x ab"), ElementsAre('x', ' ', 301));
  EXPECT_EQ(Dec(*tok, std::vector<int32_t>{'x', 300, 301}), "x<|endoftext|>ab");
}

TEST(BpeTokenizerTinyTest, MalformedJsonIsAnError) {
  struct Case {
    std::string name;
    std::string json;
    std::string message;
  };
  nlohmann::json no_model = TinyTokenizerJson({}, {});
  no_model.erase("model");
  nlohmann::json no_merges = TinyTokenizerJson({}, {});
  no_merges["model"].erase("merges");
  nlohmann::json bad_merge = TinyTokenizerJson({"ab"}, {"a b", "a zz"});
  nlohmann::json merge_no_result = TinyTokenizerJson({}, {"a b"});
  nlohmann::json three_part = TinyTokenizerJson({"ab"}, {"a b c"});
  nlohmann::json wordpiece = TinyTokenizerJson({}, {});
  wordpiece["model"]["type"] = "WordPiece";
  nlohmann::json no_bytes = TinyTokenizerJson({}, {});
  no_bytes["model"]["vocab"].erase(ByteSymbol(0));
  nlohmann::json dup_id = TinyTokenizerJson({"ab"}, {});
  dup_id["model"]["vocab"]["zz"] = 256;
  nlohmann::json huge_id = TinyTokenizerJson({}, {});
  huge_id["model"]["vocab"]["zz"] = 2000000000;
  nlohmann::json string_id = TinyTokenizerJson({}, {});
  string_id["model"]["vocab"]["zz"] = "7";
  nlohmann::json bad_normalizer = TinyTokenizerJson({}, {});
  bad_normalizer["normalizer"] = {{"type", "Lowercase"}};
  nlohmann::json bad_added = TinyTokenizerJson({}, {});
  bad_added["added_tokens"] = {{{"id", "x"}, {"content", "<s>"}}};
  nlohmann::json bad_flag = TinyTokenizerJson({}, {});
  bad_flag["added_tokens"] = {{{"id", 5}, {"content", "<s>"}, {"lstrip", 3}}};
  const std::vector<Case> cases = {
      {"not JSON", "{ \"model\": ", "parse"},
      {"array", "[1, 2]", "not a JSON object"},
      {"missing model", no_model.dump(), "\"model\""},
      {"missing merges", no_merges.dump(), "merges"},
      {"merge of unknown token", bad_merge.dump(), "merge #2"},
      {"merge result unknown", merge_no_result.dump(), "merged token"},
      {"three-part merge", three_part.dump(), "merge #1"},
      {"wordpiece", wordpiece.dump(), "WordPiece"},
      {"missing byte symbol", no_bytes.dump(), "byte 0x00"},
      {"duplicate id", dup_id.dump(), "id 256"},
      {"huge id", huge_id.dump(), "2000000000"},
      {"string id", string_id.dump(), "non-integer"},
      {"normalizer", bad_normalizer.dump(), "Lowercase"},
      {"added token id", bad_added.dump(), "added token"},
      {"added token flag", bad_flag.dump(), "boolean"},
  };
  for (const Case& c : cases) {
    TempDir dir;
    const std::string path = dir.Write("tokenizer.json", c.json);
    absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::Load(path);
    ASSERT_FALSE(tok.ok()) << c.name;
    EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument)
        << c.name;
    EXPECT_THAT(tok.status().message(), HasSubstr(path)) << c.name;
    EXPECT_THAT(tok.status().message(), HasSubstr(c.message))
        << c.name << ": " << tok.status();
  }
}

TEST(TokenizerFactoryTest, DetectsFormatByContent) {
  TempDir dir;
  // A tokenizer.json saved as .txt and a World vocabulary saved as .json.
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::Load(
      dir.Write("vocab.txt", "\n  " + TinyTokenizerJson({}, {}).dump()));
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->name(), "gpt-neox");
  tok = Tokenizer::Load(dir.Write("tokenizer.json", ByteLines()));
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->name(), "world");
}

TEST(BpeTokenizerTinyTest, HostileJsonDoesNotCrash) {
  nlohmann::json j = TinyTokenizerJson({"ab", "abc"}, {"a b", "ab c"});
  j["added_tokens"] = {{{"id", 300},
                        {"content", "<|endoftext|>"},
                        {"special", true},
                        {"normalized", false}}};
  const std::string base = j.dump();
  std::mt19937 rng(5);
  int loaded = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string json = base;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      // Edits land in the merges/added tokens/model header (the tail).
      const size_t pos = json.size() - 1 - rng() % 400;
      json[pos] = "{}[]\",:0123456789 abc\\\xff"[rng() % 24];
    }
    absl::StatusOr<std::unique_ptr<BpeTokenizer>> tok =
        BpeTokenizer::FromJson(json, "fuzz.json");
    if (tok.ok()) {
      ++loaded;
      absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode("abc abc");
      if (ids.ok()) (void)(*tok)->Decode(*ids);
    } else {
      EXPECT_THAT(std::string(tok.status().message()), HasSubstr("fuzz.json"));
    }
  }
  EXPECT_GT(loaded, 0);  // Some edits are harmless (e.g. inside strings).
}

class NeoxTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!FileExists(NeoxJsonPath())) return;
    absl::StatusOr<std::unique_ptr<Tokenizer>> tok =
        Tokenizer::Load(NeoxJsonPath());
    ASSERT_TRUE(tok.ok()) << tok.status();
    tokenizer_ = tok->release();
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }
  void SetUp() override {
    if (tokenizer_ == nullptr) {
      GTEST_SKIP() << "GPT-NeoX tokenizer not found at " << NeoxJsonPath()
                   << " (set RWKV_SHARED_DIR)";
    }
  }
  static const Tokenizer& tok() { return *tokenizer_; }

  static Tokenizer* tokenizer_;
};
Tokenizer* NeoxTokenizerTest::tokenizer_ = nullptr;

TEST_F(NeoxTokenizerTest, Properties) {
  EXPECT_EQ(tok().name(), "gpt-neox");
  EXPECT_EQ(tok().vocab_size(), 50277);
  EXPECT_EQ(tok().eos_token(), std::optional<int32_t>(0));
}

TEST_F(NeoxTokenizerTest, KnownIds) {
  EXPECT_THAT(Enc(tok(), "Hello"), ElementsAre(12092));
  EXPECT_THAT(Enc(tok(), " world"), ElementsAre(1533));
  EXPECT_THAT(Enc(tok(), "Hello world"), ElementsAre(12092, 1533));
  EXPECT_THAT(Enc(tok(), "<|endoftext|>"), ElementsAre(0));
  EXPECT_THAT(Enc(tok(), "<|padding|>"), ElementsAre(1));
  EXPECT_TRUE(Enc(tok(), "").empty());
  EXPECT_EQ(Dec(tok(), std::vector<int32_t>{0}), "<|endoftext|>");
  // Special tokens are split out before the regex.
  std::vector<int32_t> expected = Enc(tok(), "Hello");
  expected.push_back(0);
  for (int32_t id : Enc(tok(), " world")) expected.push_back(id);
  EXPECT_EQ(Enc(tok(), "Hello<|endoftext|> world"), expected);
  // Runs of 2..24 spaces are added tokens (id 50278 - length), matched
  // leftmost-longest: 30 spaces are 24 (50254) then 6 (50272).
  EXPECT_THAT(Enc(tok(), std::string(30, ' ')), ElementsAre(50254, 50272));
  EXPECT_EQ(Dec(tok(), std::vector<int32_t>{50254, 50276}),
            std::string(26, ' '));
}

TEST_F(NeoxTokenizerTest, RoundTrips) {
  for (const std::string& s : RoundTripStrings()) {
    absl::StatusOr<std::vector<int32_t>> ids = tok().Encode(s);
    ASSERT_TRUE(ids.ok()) << ids.status();
    absl::StatusOr<std::string> back = tok().Decode(*ids);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, s);
  }
}

TEST_F(NeoxTokenizerTest, NonNfcInputComesBackNfc) {
  // "e" + COMBINING ACUTE ACCENT is normalized to the precomposed U+00E9;
  // so is the Angstrom sign U+212B (to U+00C5).
  absl::StatusOr<std::vector<int32_t>> ids =
      tok().Encode("cafe\xCC\x81 \xE2\x84\xAB");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(Dec(tok(), *ids), "caf\xC3\xA9 \xC3\x85");
  EXPECT_EQ(*ids, Enc(tok(), "caf\xC3\xA9 \xC3\x85"));
}

TEST_F(NeoxTokenizerTest, InvalidUtf8IsAnError) {
  for (const auto& [text, offset] :
       std::vector<std::pair<std::string, int>>{{"ab\xFF", 2},
                                                {"\xC3", 0},
                                                {"ok \xED\xA0\x80", 3},
                                                {"x\xC0\xAF", 1}}) {
    absl::StatusOr<std::vector<int32_t>> ids = tok().Encode(text);
    ASSERT_FALSE(ids.ok());
    EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(ids.status().message(),
                HasSubstr(absl::StrCat("offset ", offset)));
  }
}

TEST_F(NeoxTokenizerTest, RandomBytesAreEncodedOrRejected) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    std::string s(rng() % 50, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    absl::StatusOr<std::vector<int32_t>> ids = tok().Encode(s);
    EXPECT_EQ(ids.ok(), IsValidUtf8(s));
    if (ids.ok()) {
      for (int32_t id : *ids) {
        ASSERT_GE(id, 0);
        ASSERT_LT(id, tok().vocab_size());
      }
    }
  }
}

TEST_F(NeoxTokenizerTest, OutOfRangeIdsAreErrors) {
  for (int32_t id : {50277, -1, 1 << 30}) {
    absl::StatusOr<std::string> text = tok().Decode(std::vector<int32_t>{id});
    ASSERT_FALSE(text.ok());
    EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(text.status().message(),
                HasSubstr(absl::StrCat("token id ", id)));
  }
}

TEST_F(NeoxTokenizerTest, RandomValidUtf8RoundTripsAfterNfc) {
  // Random mixes of ASCII, Latin-1, CJK, emoji and spaces, all already NFC
  // (no combining marks), must round-trip exactly.
  const std::vector<char32_t> alphabet = {
      U'a', U'Z', U'0',   U' ',   U' ',    U'\n',  U'\t', U'\'', U's',  U'.',
      0xE9, 0xDF, 0x4F60, 0x3002, 0x1F642, 0x3000, 0xA0,  0x661, 0x2028};
  std::mt19937 rng(99);
  for (int trial = 0; trial < 200; ++trial) {
    std::string s;
    const int len = static_cast<int>(rng() % 60);
    for (int i = 0; i < len; ++i) {
      AppendUtf8(alphabet[rng() % alphabet.size()], &s);
    }
    absl::StatusOr<std::vector<int32_t>> ids = tok().Encode(s);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(Dec(tok(), *ids), s);
  }
}

// --- Throughput (sanity floor; numbers are printed) -------------------------

std::string MixedText(size_t bytes) {
  const std::string para =
      "The RWKV language model is an RNN with transformer-level performance. "
      "It's trained on the Pile; \xE8\xBF\x99\xE6\x98\xAF\xE4\xB8\xAD\xE6\x96"
      "\x87\xE6\x96\x87\xE6\x9C\xAC\xE3\x80\x82 Emoji \xF0\x9F\x99\x82!\n"
      "    for (int i = 0; i < 10; ++i) { sum += x[i] * 3.14159; }\n";
  std::string text;
  while (text.size() < bytes) text += para;
  return text;
}

void ExpectThroughput(const Tokenizer& tok, double min_mb_per_s) {
  const std::string text = MixedText(1 << 20);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<int32_t>> ids = tok.Encode(text);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  ASSERT_TRUE(ids.ok()) << ids.status();
  const double mb_per_s = text.size() / 1e6 / seconds;
  std::printf("[ %s ] encoded %zu bytes into %zu tokens: %.1f MB/s\n",
              std::string(tok.name()).c_str(), text.size(), ids->size(),
              mb_per_s);
  EXPECT_EQ(Dec(tok, *ids), text);
  EXPECT_GT(mb_per_s, min_mb_per_s);
}

TEST_F(WorldTokenizerTest, EncodesOneMegabyteQuickly) {
  ExpectThroughput(tok(), 1.0);
}

TEST_F(NeoxTokenizerTest, EncodesOneMegabyteQuickly) {
  ExpectThroughput(tok(), 0.5);
}

}  // namespace
}  // namespace rwkv::engine
