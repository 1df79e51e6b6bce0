// WorldTokenizer: the RWKV World tokenizer (rwkv_vocab_v20230424.txt),
// greedy longest match over the input bytes, like the reference
// TRIE_TOKENIZER. Loading holds what it builds (token bytes, id tables, the
// trie) to ParseBudget::ForInput(file size), 4 x the file + 4 MiB.
// Immutable after construction; safe to share across threads.
#ifndef RWKV_ENGINE_WORLD_TOKENIZER_H_
#define RWKV_ENGINE_WORLD_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/parse_budget.h"
#include "engine/tokenizer.h"

namespace rwkv::engine {

class WorldTokenizer : public Tokenizer {
 public:
  // Id 0 is <|endoftext|>; it is not listed in the vocabulary file, Encode
  // never produces it and Decode turns it into no bytes.
  static constexpr int32_t kEndOfText = 0;
  // Largest id a vocabulary file may use (guards against hostile files).
  static constexpr int32_t kMaxId = (1 << 22) - 1;

  // Parses the contents of a vocabulary file. Each non-blank line is
  // `<id> <Python str or bytes literal> <byte length>`; str literals are
  // encoded as UTF-8 and the byte length must match. `source` (normally the
  // file path) prefixes error messages. The vocabulary must contain all 256
  // single-byte tokens so that every input can be encoded. InvalidArgument
  // for a malformed file or one that needs more memory than its budget (a
  // few large ids in a small file); ResourceExhausted if an allocation
  // fails.
  static absl::StatusOr<std::unique_ptr<WorldTokenizer>> FromString(
      std::string_view contents, std::string_view source);

  // Never fails: any bytes, valid UTF-8 or not, are encoded.
  absl::StatusOr<std::vector<int32_t>> Encode(
      std::string_view text) const override;
  absl::StatusOr<std::string> Decode(
      absl::Span<const int32_t> ids) const override;
  int vocab_size() const override { return vocab_size_; }
  std::string_view name() const override { return "world"; }
  std::optional<int32_t> eos_token() const override { return kEndOfText; }

 private:
  WorldTokenizer() = default;

  static absl::StatusOr<std::unique_ptr<WorldTokenizer>> Parse(
      std::string_view contents, std::string_view source, ParseBudget* budget);

  // The bytes of token `id`; `id` must be in [0, vocab_size_).
  std::string_view TokenBytes(int32_t id) const {
    return std::string_view(blob_).substr(offsets_[id],
                                          offsets_[id + 1] - offsets_[id]);
  }
  // Adds `bytes` -> `id` to the trie (a later duplicate replaces an earlier
  // one, as in the reference implementation), charging new nodes and edges
  // to `budget`; false (the trie unusable) when it is spent.
  bool InsertIntoTrie(std::string_view bytes, int32_t id, ParseBudget* budget);

  std::string source_;
  int vocab_size_ = 0;
  // Token bytes by id: blob_[offsets_[id], offsets_[id + 1]). Ids that the
  // file does not define are empty and marked false in defined_.
  std::string blob_;
  std::vector<uint32_t> offsets_;
  std::vector<bool> defined_;

  // Byte trie. Node 0 is the root; node_token_[n] is the id ending at node n
  // or -1. Children of the root are in root_children_ (0 = none), deeper
  // edges in edges_ keyed by (node << 8 | byte).
  std::vector<int32_t> node_token_;
  uint32_t root_children_[256] = {};
  absl::flat_hash_map<uint64_t, uint32_t> edges_;
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_WORLD_TOKENIZER_H_
