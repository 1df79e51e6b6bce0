#include "engine/tokenizer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "engine/bpe_tokenizer.h"
#include "engine/byte_tokenizer.h"
#include "engine/world_tokenizer.h"

namespace rwkv::engine {
namespace {

// Tokenizer files are a few MB; anything far larger is not one.
constexpr long kMaxTokenizerFileBytes = 512L << 20;

absl::StatusOr<std::string> ReadTokenizerFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int err = errno;
    const std::string message = absl::StrCat("cannot open tokenizer file ",
                                             path, ": ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(message)
                         : absl::InvalidArgumentError(message);
  }
  std::string contents;
  char buffer[1 << 16];
  bool too_large = false;
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof(buffer), f)) > 0) {
    if (contents.size() + got > static_cast<size_t>(kMaxTokenizerFileBytes)) {
      too_large = true;
      break;
    }
    contents.append(buffer, got);
  }
  const bool read_error = std::ferror(f) != 0;
  const int read_errno = errno;
  std::fclose(f);
  if (too_large) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": tokenizer file is larger than ",
                     kMaxTokenizerFileBytes >> 20, " MiB"));
  }
  if (read_error) {
    return absl::InvalidArgumentError(
        absl::StrCat("error reading tokenizer file ", path, ": ",
                     std::strerror(read_errno)));
  }
  return contents;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(
    std::string_view spec) {
  if (spec == "bytes") return std::make_unique<ByteTokenizer>();
  if (spec.empty()) {
    return absl::InvalidArgumentError(
        "empty tokenizer spec: expected \"bytes\", an RWKV World vocabulary "
        ".txt or a Hugging Face tokenizer.json");
  }
  const std::string path(spec);
  absl::StatusOr<std::string> contents = ReadTokenizerFile(path);
  if (!contents.ok()) return contents.status();
  std::string_view head = *contents;
  if (head.size() >= 3 && head.substr(0, 3) == "\xEF\xBB\xBF") {
    head.remove_prefix(3);
  }
  while (!head.empty() &&
         absl::ascii_isspace(static_cast<unsigned char>(head.front()))) {
    head.remove_prefix(1);
  }
  if (head.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": tokenizer file is empty"));
  }
  if (head[0] == '{' || head[0] == '[') {
    absl::StatusOr<std::unique_ptr<BpeTokenizer>> bpe =
        BpeTokenizer::FromJson(*contents, path);
    if (!bpe.ok()) return bpe.status();
    return std::unique_ptr<Tokenizer>(*std::move(bpe));
  }
  if (absl::ascii_isdigit(static_cast<unsigned char>(head[0]))) {
    absl::StatusOr<std::unique_ptr<WorldTokenizer>> world =
        WorldTokenizer::FromString(*contents, path);
    if (!world.ok()) return world.status();
    return std::unique_ptr<Tokenizer>(*std::move(world));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      path,
      ": not a recognised tokenizer file: expected an RWKV World vocabulary "
      "(lines like `33 ' ' 1`) or a Hugging Face tokenizer.json (a JSON "
      "object)"));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::ForVocabSize(
    int vocab_size) {
  if (vocab_size == ByteTokenizer::kVocabSize) {
    return std::make_unique<ByteTokenizer>();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "the model has a vocabulary of ", vocab_size,
      " tokens and no tokenizer was given: --tokenizer is required (\"bytes\", "
      "an RWKV World rwkv_vocab_*.txt or a Hugging Face tokenizer.json); only "
      "256-token models default to the byte tokenizer"));
}

}  // namespace rwkv::engine
