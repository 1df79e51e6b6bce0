// BpeTokenizer: byte-level BPE from a Hugging Face tokenizer.json (GPT-NeoX
// 20B style: NFC, added tokens, GPT-2 regex, ranked merges, byte-level
// decoder). The file is read as a stream of JSON events and what loading
// builds is held to ParseBudget::ForInput(file size), 4 x the file + 4 MiB.
// Immutable after construction; safe to share across threads.
#ifndef RWKV_ENGINE_BPE_TOKENIZER_H_
#define RWKV_ENGINE_BPE_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/parse_budget.h"
#include "engine/tokenizer.h"

namespace rwkv::engine {

class BpeTokenizer : public Tokenizer {
 public:
  // Largest id a tokenizer.json may use (guards against hostile files).
  static constexpr int32_t kMaxId = (1 << 22) - 1;

  // Parses a tokenizer.json. Supported: model.type "BPE" with a byte-level
  // vocabulary (symbols for every byte that can occur in UTF-8), merges as "a
  // b" strings or
  // ["a", "b"] pairs, normalizer null or NFC, pre_tokenizer ByteLevel (with
  // the GPT-2 regex), decoder null or ByteLevel. The post_processor is
  // ignored (ByteLevel only adjusts offsets). `source` (normally the path)
  // prefixes error messages. InvalidArgument for a malformed file or one
  // that needs more memory than its budget; ResourceExhausted if an
  // allocation fails.
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> FromJson(
      std::string_view json, std::string_view source);

  // Follows Hugging Face tokenizers: added tokens that are not "normalized"
  // are split out of the raw text first, the rest is NFC-normalized (so
  // non-NFC input decodes back in NFC form), then "normalized" added tokens
  // are split out, then the GPT-2 regex and BPE merges apply. `text` must
  // be valid UTF-8 (InvalidArgument naming the byte offset otherwise).
  absl::StatusOr<std::vector<int32_t>> Encode(
      std::string_view text) const override;
  // Added tokens, special ones included, decode to their content (they are
  // not skipped).
  absl::StatusOr<std::string> Decode(
      absl::Span<const int32_t> ids) const override;
  int vocab_size() const override { return vocab_size_; }
  std::string_view name() const override { return "gpt-neox"; }
  // The id of "<|endoftext|>", if the vocabulary has it.
  std::optional<int32_t> eos_token() const override { return eos_token_; }

 private:
  struct AddedToken {
    std::string content;  // NFC-normalized when `normalized` is set.
    int32_t id;
    bool single_word;
    bool lstrip;
    bool rstrip;
    bool normalized;
  };
  // Byte trie over the contents of some added tokens. Node 0 is the root;
  // node_token[n] is the index in added_ of the token ending at node n, or
  // -1. Root edges are in root (0 = none), deeper ones in edges keyed by
  // (node << 8 | byte).
  struct AddedTokenIndex {
    uint32_t root[256] = {};
    std::vector<int> node_token = {-1};
    absl::flat_hash_map<uint64_t, uint32_t> edges;

    void Insert(std::string_view content, int token);
    // Index in added_ of the longest token starting at text[pos], or -1.
    int LongestMatch(std::string_view text, size_t pos, size_t* length) const;
  };
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };

  // Per-Encode() buffers and word cache for MergeWord.
  struct MergeScratch;

  BpeTokenizer() = default;

  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> Parse(
      std::string_view json, std::string_view source, ParseBudget* budget);

  // Splits `text` at leftmost-longest matches of the added tokens in
  // `index`, appending their ids to `ids` and calling `gap` (which returns
  // absl::Status) on every non-empty stretch between them, in order.
  template <typename GapFn>
  absl::Status SplitOnAddedTokens(std::string_view text,
                                  const AddedTokenIndex& index, GapFn gap,
                                  std::vector<int32_t>* ids) const;
  // GPT-2 regex pre-tokenization of normalized text, then BPE.
  void PreTokenizeAndMerge(std::string_view text, MergeScratch* scratch,
                           std::vector<int32_t>* ids) const;
  // BPE merges over the bytes of one pre-token.
  void MergeWord(std::string_view word, MergeScratch* scratch,
                 std::vector<int32_t>* ids) const;

  std::string source_;
  int vocab_size_ = 0;
  std::optional<int32_t> eos_token_;
  bool add_prefix_space_ = false;
  bool nfc_ = false;
  // Decoded bytes by id: blob_[offsets_[id], offsets_[id + 1]).
  std::string blob_;
  std::vector<uint32_t> offsets_;
  std::vector<bool> defined_;
  int32_t byte_to_id_[256] = {};
  absl::flat_hash_map<uint64_t, Merge> merges_;  // (left << 32 | right).
  std::vector<AddedToken> added_;
  AddedTokenIndex raw_added_;         // Matched before normalization.
  AddedTokenIndex normalized_added_;  // Matched after normalization.
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_BPE_TOKENIZER_H_
