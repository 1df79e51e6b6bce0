#include "engine/bpe_tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "engine/json_text_shape.h"
#include "engine/parse_budget.h"
#include "engine/utf8.h"
#include "nlohmann/json.hpp"

namespace rwkv::engine {
namespace {

// Debian's Abseil has its own string_view type; convert explicitly.
absl::string_view AbslView(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

using Json = nlohmann::json;

// GPT-2's reversible byte <-> printable code point mapping.
struct ByteLevelMap {
  char32_t byte_to_cp[256];
  int16_t cp_to_byte[0x144];  // -1 where the code point is not a byte.

  ByteLevelMap() {
    std::fill(std::begin(cp_to_byte), std::end(cp_to_byte), int16_t{-1});
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable =
          (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const char32_t cp = printable ? b : 256 + extra++;
      byte_to_cp[b] = cp;
      cp_to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelMap& ByteLevel() {
  static const ByteLevelMap* const map = new ByteLevelMap();
  return *map;
}

// The bytes a byte-level decoder produces for a token string: each code
// point mapped back to its byte, or, if some code point is not a byte-level
// symbol (e.g. an added token made of plain spaces), the string itself.
std::string ByteLevelDecode(std::string_view token) {
  const ByteLevelMap& map = ByteLevel();
  std::string out;
  size_t pos = 0;
  while (pos < token.size()) {
    const Utf8Scan scan = ScanUtf8Char(token.substr(pos));
    if (scan.status != Utf8ScanStatus::kValid || scan.code_point >= 0x144 ||
        map.cp_to_byte[scan.code_point] < 0) {
      return std::string(token);
    }
    out.push_back(static_cast<char>(map.cp_to_byte[scan.code_point]));
    pos += scan.length;
  }
  return out;
}

// NFC of a run of text via utf8proc.
absl::Status AppendNfcRun(std::string_view run, std::string* out) {
  utf8proc_uint8_t* normalized = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(
      reinterpret_cast<const utf8proc_uint8_t*>(run.data()),
      static_cast<utf8proc_ssize_t>(run.size()), &normalized,
      static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) {
    std::free(normalized);
    return absl::InvalidArgumentError(
        absl::StrCat("NFC normalization failed: ", utf8proc_errmsg(n)));
  }
  out->append(reinterpret_cast<const char*>(normalized),
              static_cast<size_t>(n));
  std::free(normalized);
  return absl::OkStatus();
}

// NFC normalization of valid UTF-8. ASCII is invariant under NFC and an
// ASCII character never composes with what precedes it, so only runs of
// non-ASCII characters (with the ASCII character just before them, which
// may compose with a following combining mark) go through utf8proc.
absl::StatusOr<std::string> Nfc(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  const size_t n = text.size();
  while (pos < n) {
    size_t q = pos;
    while (q < n && static_cast<uint8_t>(text[q]) < 0x80) ++q;
    if (q == n) {
      out.append(text.data() + pos, n - pos);
      break;
    }
    const size_t start = q > pos ? q - 1 : q;
    out.append(text.data() + pos, start - pos);
    size_t end = q;
    while (end < n && static_cast<uint8_t>(text[end]) >= 0x80) ++end;
    absl::Status status = AppendNfcRun(text.substr(start, end - start), &out);
    if (!status.ok()) return status;
    pos = end;
  }
  return out;
}

// Character classes of the GPT-2 pre-tokenizer regex.
enum CharClass : uint8_t { kSpace, kLetter, kNumber, kOther };

// Unicode White_Space, which is what \s matches in Oniguruma (used by
// Hugging Face tokenizers) for Unicode strings.
bool IsWhiteSpace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

CharClass Classify(char32_t cp) {
  if (cp < 0x80) {
    if ((cp >= 0x09 && cp <= 0x0D) || cp == ' ') return kSpace;
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return kLetter;
    if (cp >= '0' && cp <= '9') return kNumber;
    return kOther;
  }
  if (IsWhiteSpace(cp)) return kSpace;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return kLetter;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return kNumber;
    default:
      return kOther;
  }
}

// What \w matches in the Rust regex crate (used for single_word), roughly:
// letters, marks, numbers and connector punctuation.
bool IsWordChar(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
           (cp >= '0' && cp <= '9') || cp == '_';
  }
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

// The code point that ends `text` (valid UTF-8, non-empty).
char32_t LastCodePoint(std::string_view text) {
  size_t start = text.size() - 1;
  while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) {
    --start;
  }
  return ScanUtf8Char(text.substr(start)).code_point;
}

// Byte length of the leading (or trailing) Unicode whitespace of `text`.
size_t LeadingWhiteSpace(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    const Utf8Scan scan = ScanUtf8Char(text.substr(pos));
    if (scan.status != Utf8ScanStatus::kValid ||
        !IsWhiteSpace(scan.code_point)) {
      break;
    }
    pos += scan.length;
  }
  return pos;
}

size_t TrailingWhiteSpace(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) {
      --start;
    }
    const Utf8Scan scan = ScanUtf8Char(text.substr(start, end - start));
    if (scan.status != Utf8ScanStatus::kValid ||
        !IsWhiteSpace(scan.code_point)) {
      break;
    }
    end = start;
  }
  return text.size() - end;
}

// A code point of the text being pre-tokenized.
struct CodePoint {
  uint32_t length;  // In bytes.
  char32_t cp;
  CharClass cls;
};

// The code point starting at text[pos] (pos < text.size()). Encode()
// validated the input and NFC output is valid UTF-8; an invalid byte would
// be read as one "other" character.
CodePoint CodePointAt(std::string_view text, size_t pos) {
  const uint8_t b = static_cast<uint8_t>(text[pos]);
  if (b < 0x80) return {1, b, Classify(b)};
  const Utf8Scan scan = ScanUtf8Char(text.substr(pos));
  if (scan.status != Utf8ScanStatus::kValid) return {1, 0xFFFD, kOther};
  return {static_cast<uint32_t>(scan.length), scan.code_point,
          Classify(scan.code_point)};
}

// Entry of the BPE merge queue: lowest rank first, then leftmost.
struct QueuedMerge {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
  bool operator<(const QueuedMerge& o) const {  // "lower priority than".
    return rank != o.rank ? rank > o.rank : pos > o.pos;
  }
};

bool GetBool(const Json& obj, const char* key, bool default_value) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return default_value;
  return it->get<bool>();  // Throws type_error for non-booleans.
}

std::string Quote(std::string_view s) {
  return absl::StrCat("`", absl::CHexEscape(AbslView(s.substr(0, 80))),
                      s.size() > 80 ? "..." : "", "`");
}

// A tokenizer.json read as a stream of JSON events (no document tree of the
// whole file): model.vocab and model.merges, nearly all of the file, are
// taken entry by entry; the small parts the tokenizer needs (normalizer,
// pre_tokenizer, decoder, added_tokens and model's type and subword
// options) are built as JSON trees; every other value is skipped. All of it
// is charged to the budget.
class TokenizerJsonReader : public nlohmann::json_sax<Json> {
 public:
  // A merge as written: "a b" (text), ["a", "b"] (pair) or anything else.
  struct MergeText {
    enum class Form : uint8_t { kText, kPair, kBad };
    Form form;
    uint32_t offset;  // in merge_blob: text, or left then right
    uint32_t left;    // kPair: bytes of the left token
    uint32_t size;    // all bytes
  };
  // What the reader found. A std::optional<Json> is set when its key was
  // present.
  struct Found {
    std::optional<Json> normalizer, pre_tokenizer, decoder, added_tokens;
    std::optional<Json> model_type, subword_prefix, word_suffix;
    bool has_model = false, model_is_object = false;
    bool has_vocab = false, vocab_is_object = false;
    bool has_merges = false, merges_is_array = false;
    absl::Status vocab_error;  // the first bad vocab entry
    absl::flat_hash_map<std::string, int32_t> vocab;
    std::vector<bool> id_used;  // by id (the map moves its keys as it grows)
    std::string merge_blob;
    std::vector<MergeText> merges;
  };

  TokenizerJsonReader(std::string_view source, ParseBudget* budget,
                      Found* found)
      : source_(source), budget_(budget), found_(found) {}

  // Set when the reader stopped the parse (a JSON syntax error, a second
  // vocab, or a spent budget: then over_budget() and the message is
  // complete, source included).
  const absl::Status& status() const { return status_; }
  bool over_budget() const { return over_budget_; }

  bool null() override { return Scalar(Json(nullptr)); }
  bool boolean(bool v) override { return Scalar(Json(v)); }
  bool number_integer(number_integer_t v) override { return Scalar(Json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return Scalar(Json(v)); }
  bool number_float(number_float_t v, const string_t&) override {
    return Scalar(Json(v));
  }
  bool string(string_t& v) override;
  bool binary(binary_t&) override { return Scalar(Json(nullptr)); }
  bool start_object(std::size_t) override { return Open(/*is_object=*/true); }
  bool start_array(std::size_t) override { return Open(/*is_object=*/false); }
  bool key(string_t& k) override;
  bool end_object() override { return Close(); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& e) override {
    return Fail(absl::InvalidArgumentError(e.what()));
  }

 private:
  // What the innermost open container (or the value about to start) is.
  enum class Where : uint8_t { kRoot, kModel, kVocab, kMerges, kMergePair };

  // A JSON tree value costs its node, a map node when it is an object
  // member, and its heap string if any.
  static constexpr uint64_t kTreeNodeBytes = 128;

  bool Fail(absl::Status s) {
    if (status_.ok()) status_ = std::move(s);
    return false;
  }
  bool Charge(uint64_t bytes) {
    if (budget_->TryCharge(bytes)) return true;
    return OverBudget("tokenizer.json");
  }
  bool OverBudget(const std::string& what) {
    over_budget_ = true;
    return Fail(budget_->Exceeded(absl::StrCat(AbslView(source_), ": ", what)));
  }
  // The slot a value at the current position is built into, or null.
  std::optional<Json>* SlotForValue();
  bool Scalar(Json value);
  bool Open(bool is_object);
  bool Close();
  bool AddToTree(Json value, bool is_container);
  bool VocabEntry(const Json& value);
  bool AddMerge(MergeText::Form form, std::string_view a, std::string_view b);

  std::string_view source_;
  ParseBudget* budget_;
  Found* found_;
  absl::Status status_;
  bool over_budget_ = false;

  int depth_ = 0;       // open containers
  int skip_depth_ = 0;  // > 0: inside a skipped container opened at this depth
  std::vector<Where> where_;  // per open container outside trees
  std::string key_;           // the last key outside trees
  // The tree being built: its open containers and their pending keys.
  std::vector<Json*> tree_;
  std::vector<std::string> tree_keys_;
  // A ["a", "b"] merge being read.
  std::vector<std::string> pair_;
  bool pair_bad_ = false;
};

std::optional<Json>* TokenizerJsonReader::SlotForValue() {
  if (where_.empty()) return nullptr;
  if (where_.back() == Where::kRoot) {
    if (key_ == "normalizer") return &found_->normalizer;
    if (key_ == "pre_tokenizer") return &found_->pre_tokenizer;
    if (key_ == "decoder") return &found_->decoder;
    if (key_ == "added_tokens") return &found_->added_tokens;
  } else if (where_.back() == Where::kModel) {
    if (key_ == "type") return &found_->model_type;
    if (key_ == "continuing_subword_prefix") return &found_->subword_prefix;
    if (key_ == "end_of_word_suffix") return &found_->word_suffix;
  }
  return nullptr;
}

bool TokenizerJsonReader::AddToTree(Json value, bool is_container) {
  if (!Charge(kTreeNodeBytes +
              (value.is_string()
                   ? ParseBudget::StringBytes(
                         value.get_ref<const std::string&>().size())
                   : 0))) {
    return false;
  }
  Json* parent = tree_.back();
  Json* added;
  if (parent->is_array()) {
    parent->push_back(std::move(value));
    added = &parent->back();
  } else {
    added = &((*parent)[tree_keys_.back()] = std::move(value));
  }
  if (is_container) {
    tree_.push_back(added);
    tree_keys_.emplace_back();
  }
  return true;
}

bool TokenizerJsonReader::Scalar(Json value) {
  if (skip_depth_ != 0) return true;
  if (!tree_.empty()) return AddToTree(std::move(value), false);
  if (where_.empty()) {
    return Fail(absl::InvalidArgumentError("top level is not a JSON object"));
  }
  switch (where_.back()) {
    case Where::kRoot:
      if (key_ == "model") found_->has_model = true;
      break;
    case Where::kModel:
      if (key_ == "vocab") found_->has_vocab = true;
      if (key_ == "merges") found_->has_merges = true;
      break;
    case Where::kVocab:
      return VocabEntry(value);
    case Where::kMerges:
      if (value.is_string()) {
        return AddMerge(MergeText::Form::kText,
                        value.get_ref<const std::string&>(), {});
      }
      return AddMerge(MergeText::Form::kBad, {}, {});
    case Where::kMergePair:
      if (value.is_string() && pair_.size() < 2) {
        if (!Charge(ParseBudget::StringBytes(
                value.get_ref<const std::string&>().size()))) {
          return false;
        }
        pair_.push_back(value.get<std::string>());
      } else {
        pair_bad_ = true;
      }
      break;
  }
  if (std::optional<Json>* slot = SlotForValue()) {
    if (!Charge(kTreeNodeBytes)) return false;
    *slot = std::move(value);
  }
  return true;
}

bool TokenizerJsonReader::string(string_t& v) {
  if (skip_depth_ == 0 && !tree_.empty()) {
    if (!Charge(kTreeNodeBytes + ParseBudget::StringBytes(v.size()))) {
      return false;
    }
    Json* parent = tree_.back();
    if (parent->is_array()) {
      parent->push_back(std::move(v));
    } else {
      (*parent)[tree_keys_.back()] = std::move(v);
    }
    return true;
  }
  if (skip_depth_ == 0 && !where_.empty() && where_.back() == Where::kMerges) {
    return AddMerge(MergeText::Form::kText, v, {});
  }
  if (skip_depth_ == 0 && SlotForValue() != nullptr &&
      !Charge(ParseBudget::StringBytes(v.size()))) {
    return false;
  }
  return Scalar(Json(std::move(v)));
}

bool TokenizerJsonReader::Open(bool is_object) {
  ++depth_;
  if (skip_depth_ != 0) return true;
  if (!tree_.empty()) {
    return AddToTree(is_object ? Json::object() : Json::array(), true);
  }
  if (where_.empty()) {
    if (!is_object) {
      return Fail(absl::InvalidArgumentError("top level is not a JSON object"));
    }
    where_.push_back(Where::kRoot);
    return true;
  }
  if (std::optional<Json>* slot = SlotForValue()) {
    if (!Charge(kTreeNodeBytes)) return false;
    *slot = is_object ? Json::object() : Json::array();
    tree_.push_back(&**slot);
    tree_keys_.emplace_back();
    return true;
  }
  const Where here = where_.back();
  if (here == Where::kRoot && key_ == "model") {
    found_->has_model = true;
    found_->model_is_object = is_object;
    if (is_object) {
      where_.push_back(Where::kModel);
      return true;
    }
  } else if (here == Where::kModel && key_ == "vocab") {
    if (found_->has_vocab) {
      return Fail(absl::InvalidArgumentError("model.vocab appears twice"));
    }
    found_->has_vocab = true;
    found_->vocab_is_object = is_object;
    if (is_object) {
      where_.push_back(Where::kVocab);
      return true;
    }
  } else if (here == Where::kModel && key_ == "merges") {
    if (found_->has_merges) {
      return Fail(absl::InvalidArgumentError("model.merges appears twice"));
    }
    found_->has_merges = true;
    found_->merges_is_array = !is_object;
    if (!is_object) {
      where_.push_back(Where::kMerges);
      return true;
    }
  } else if (here == Where::kVocab) {
    VocabEntry(Json::object());  // records the error; the value is skipped
  } else if (here == Where::kMerges && !is_object) {
    pair_.clear();
    pair_bad_ = false;
    where_.push_back(Where::kMergePair);
    return true;
  } else if (here == Where::kMerges) {  // an object is not a merge
    if (!AddMerge(MergeText::Form::kBad, {}, {})) return false;
  } else if (here == Where::kMergePair) {
    pair_bad_ = true;
  }
  skip_depth_ = depth_;
  return true;
}

bool TokenizerJsonReader::Close() {
  --depth_;
  if (skip_depth_ != 0) {
    if (depth_ < skip_depth_) skip_depth_ = 0;
    return true;
  }
  if (!tree_.empty()) {
    tree_.pop_back();
    tree_keys_.pop_back();
    return true;
  }
  const Where closed = where_.back();
  where_.pop_back();
  if (closed == Where::kMergePair) {
    if (pair_bad_ || pair_.size() != 2) {
      return AddMerge(MergeText::Form::kBad, {}, {});
    }
    return AddMerge(MergeText::Form::kPair, pair_[0], pair_[1]);
  }
  return true;
}

bool TokenizerJsonReader::key(string_t& k) {
  if (skip_depth_ != 0) return true;
  if (!tree_.empty()) {
    if (!Charge(ParseBudget::StringBytes(k.size()))) return false;
    tree_keys_.back() = k;
    return true;
  }
  if (k.size() > key_.capacity() &&
      !Charge(ParseBudget::StringBytes(k.size()))) {
    return false;
  }
  key_ = k;
  return true;
}

bool TokenizerJsonReader::VocabEntry(const Json& value) {
  if (!found_->vocab_error.ok()) return true;  // the first error is reported
  auto error = [&](const std::string& what) {
    found_->vocab_error = absl::InvalidArgumentError(what);
    return true;
  };
  if (!value.is_number_integer()) {
    return error(
        absl::StrCat("vocab entry ", Quote(key_), " has a non-integer id"));
  }
  const int64_t id = value.get<int64_t>();
  if (id < 0 || id > BpeTokenizer::kMaxId) {
    return error(absl::StrCat("vocab entry ", Quote(key_), " has id ", id,
                              " outside [0, ", BpeTokenizer::kMaxId, "]"));
  }
  if (!IsValidUtf8(key_)) {
    return error(
        absl::StrCat("vocab entry ", Quote(key_), " is not valid UTF-8"));
  }
  std::vector<bool>& id_used = found_->id_used;
  if (static_cast<size_t>(id) >= id_used.size()) {
    const size_t old_cap = id_used.capacity();
    if (static_cast<size_t>(id) >= old_cap) {  // grow by doubling
      const uint64_t bits = std::max<uint64_t>(id + 1, 2 * old_cap);
      if (!Charge(bits / 8 + 8 + ParseBudget::kAllocOverhead)) return false;
      id_used.reserve(bits);
      if (old_cap > 0) {
        budget_->Refund(old_cap / 8 + 8 + ParseBudget::kAllocOverhead);
      }
    }
    id_used.resize(id + 1, false);
  }
  if (id_used[id]) {
    std::string first;
    for (const auto& [token, token_id] : found_->vocab) {
      if (token_id == id) first = token;
    }
    return error(absl::StrCat("vocab maps both ", Quote(first), " and ",
                              Quote(key_), " to id ", id));
  }
  id_used[id] = true;
  if (!budget_->ReserveTable(&found_->vocab, 1) ||
      !Charge(ParseBudget::StringBytes(key_.size()))) {
    return OverBudget("tokenizer.json: model.vocab");
  }
  // A repeated key keeps its first id, as before. The key is copied first:
  // absl's tables are not exception-safe if constructing an entry in place
  // throws (std::bad_alloc), while moving a string cannot.
  std::string token = key_;
  found_->vocab.emplace(std::move(token), static_cast<int32_t>(id));
  return true;
}

bool TokenizerJsonReader::AddMerge(MergeText::Form form, std::string_view a,
                                   std::string_view b) {
  std::string& blob = found_->merge_blob;
  if (blob.size() + a.size() + b.size() >= (uint64_t{1} << 32)) {
    return Fail(absl::InvalidArgumentError("model.merges is too large"));
  }
  const size_t cap = blob.capacity();
  if (blob.size() + a.size() + b.size() > cap) {
    const size_t grown = std::max(blob.size() + a.size() + b.size(), 2 * cap);
    if (!Charge(ParseBudget::StringBytes(grown))) return false;
    blob.reserve(grown);
    if (cap > 0) budget_->Refund(ParseBudget::StringBytes(cap));
  }
  if (!budget_->Reserve(&found_->merges, 1)) {
    return OverBudget("tokenizer.json: model.merges");
  }
  found_->merges.push_back({form, static_cast<uint32_t>(blob.size()),
                            static_cast<uint32_t>(a.size()),
                            static_cast<uint32_t>(a.size() + b.size())});
  blob.append(a);
  blob.append(b);
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromJson(
    std::string_view json, std::string_view source) {
  return GuardAllocation(
      source, [&]() -> absl::StatusOr<std::unique_ptr<BpeTokenizer>> {
        ParseBudget budget = ParseBudget::ForInput(json.size());
        return Parse(json, source, &budget);
      });
}

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::Parse(
    std::string_view json, std::string_view source, ParseBudget* budget) {
  auto error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(source), ": tokenizer.json: ", what));
  };
  auto over = [&](const std::string& what) {
    return budget->Exceeded(
        absl::StrCat(AbslView(source), ": tokenizer.json: ", what));
  };
  auto tok = std::unique_ptr<BpeTokenizer>(new BpeTokenizer());
  tok->source_ = std::string(source);
  // The lexer's buffers, and the reader's copy of the last key.
  if (!budget->TryCharge(ScanJsonText(json).LexerBytes())) {
    return over("the JSON lexer");
  }
  TokenizerJsonReader::Found found;
  {
    TokenizerJsonReader reader(source, budget, &found);
    if (!Json::sax_parse(json.begin(), json.end(), &reader)) {
      if (reader.over_budget()) return reader.status();
      return error(reader.status().ok() ? "parse error"
                                        : reader.status().message());
    }
  }
  try {
    // --- Pipeline components -------------------------------------------
    if (found.normalizer.has_value() && !found.normalizer->is_null()) {
      const std::string type = found.normalizer->value("type", "");
      if (type != "NFC") {
        return error(absl::StrCat("unsupported normalizer type ", Quote(type),
                                  " (only NFC or null)"));
      }
      tok->nfc_ = true;
    }
    const std::optional<Json>& pre = found.pre_tokenizer;
    if (!pre.has_value() || !pre->is_object() ||
        pre->value("type", "") != "ByteLevel") {
      return error(
          "pre_tokenizer must be {\"type\": \"ByteLevel\"}; only byte-level "
          "BPE (GPT-2 / GPT-NeoX style) is supported");
    }
    if (!GetBool(*pre, "use_regex", true)) {
      return error(
          "ByteLevel pre_tokenizer with use_regex=false is not "
          "supported");
    }
    tok->add_prefix_space_ = GetBool(*pre, "add_prefix_space", false);
    if (found.decoder.has_value() && !found.decoder->is_null()) {
      if (!found.decoder->is_object() ||
          found.decoder->value("type", "") != "ByteLevel") {
        return error("unsupported decoder (only ByteLevel or null)");
      }
    }

    // --- Model -----------------------------------------------------------
    if (!found.has_model || !found.model_is_object) {
      return error("missing \"model\" object");
    }
    if (found.model_type.has_value() && *found.model_type != "BPE") {
      return error(absl::StrCat("model type ", Quote(found.model_type->dump()),
                                " is not supported (only BPE)"));
    }
    for (const auto& [key, value] :
         {std::pair{"continuing_subword_prefix", &found.subword_prefix},
          std::pair{"end_of_word_suffix", &found.word_suffix}}) {
      if (value->has_value() && !(*value)->is_null() &&
          !((*value)->is_string() && (*value)->get<std::string>().empty())) {
        return error(absl::StrCat("model.", key, " is not supported"));
      }
    }
    if (!found.has_vocab || !found.vocab_is_object || found.vocab.empty()) {
      if (found.vocab_error.ok()) {
        return error("missing or empty model.vocab object");
      }
    }
    if (!found.has_merges || !found.merges_is_array) {
      return error("missing model.merges array");
    }
    if (!found.vocab_error.ok()) return error(found.vocab_error.message());
    const absl::flat_hash_map<std::string, int32_t>& vocab = found.vocab;
    // The map is complete: its keys stay where they are from here on.
    std::vector<const std::string*> token_of_id;
    if (!budget->Reserve(&token_of_id, found.id_used.size())) {
      return over(absl::StrCat("the id table for ids up to ",
                               found.id_used.size() - 1));
    }
    token_of_id.resize(found.id_used.size(), nullptr);
    for (const auto& [token, id] : vocab) token_of_id[id] = &token;

    // Bytes that never occur in valid UTF-8 (C0, C1, F5..FF) may be missing
    // (GPT-NeoX 20B lacks them); Encode only sees valid UTF-8.
    const ByteLevelMap& byte_level = ByteLevel();
    for (int b = 0; b < 256; ++b) {
      std::string symbol;
      AppendUtf8(byte_level.byte_to_cp[b], &symbol);
      auto it = vocab.find(symbol);
      const bool in_utf8 = b < 0xC0 || (b >= 0xC2 && b <= 0xF4);
      if (it == vocab.end() && !in_utf8) {
        tok->byte_to_id_[b] = -1;
        continue;
      }
      if (it == vocab.end()) {
        return error(absl::StrCat(
            "model.vocab lacks the byte-level symbol ", Quote(symbol),
            " for byte 0x", absl::Hex(b, absl::kZeroPad2),
            "; only byte-level BPE (GPT-2 / GPT-NeoX style) is supported"));
      }
      tok->byte_to_id_[b] = it->second;
    }

    if (!budget->ReserveTable(&tok->merges_, found.merges.size())) {
      return over(absl::StrCat(found.merges.size(), " merges"));
    }
    int32_t rank = 0;
    std::string merged_text;
    for (const TokenizerJsonReader::MergeText& m : found.merges) {
      const std::string_view text(found.merge_blob.data() + m.offset, m.size);
      std::string_view left, right;
      if (m.form == TokenizerJsonReader::MergeText::Form::kText) {
        const size_t space = text.find(' ');
        if (space == std::string_view::npos ||
            text.find(' ', space + 1) != std::string_view::npos) {
          return error(absl::StrCat("merge #", rank + 1, " ", Quote(text),
                                    " is not two tokens separated by one "
                                    "space"));
        }
        left = text.substr(0, space);
        right = text.substr(space + 1);
      } else if (m.form == TokenizerJsonReader::MergeText::Form::kPair) {
        left = text.substr(0, m.left);
        right = text.substr(m.left);
      } else {
        return error(absl::StrCat("merge #", rank + 1,
                                  " is neither \"a b\" nor [\"a\", \"b\"]"));
      }
      auto l = vocab.find(AbslView(left));
      auto r = vocab.find(AbslView(right));
      merged_text.assign(left);
      merged_text.append(right);
      auto merged = vocab.find(merged_text);
      for (auto [it, part] : {std::pair{l, left}, std::pair{r, right}}) {
        if (it == vocab.end()) {
          return error(absl::StrCat("merge #", rank + 1, ": token ",
                                    Quote(part), " is not in model.vocab"));
        }
      }
      if (merged == vocab.end()) {
        return error(absl::StrCat("merge #", rank + 1, ": merged token ",
                                  Quote(merged_text),
                                  " is not in model.vocab"));
      }
      tok->merges_[(static_cast<uint64_t>(l->second) << 32) |
                   static_cast<uint32_t>(r->second)] = {rank, merged->second};
      ++rank;
    }

    // --- Added tokens ----------------------------------------------------
    std::vector<std::string> added_bytes_of_id;  // Decoding overrides.
    if (found.added_tokens.has_value() && !found.added_tokens->is_null()) {
      const Json& added_tokens = *found.added_tokens;
      if (!added_tokens.is_array())
        return error("added_tokens is not an array");
      for (const Json& t : added_tokens) {
        if (!t.is_object() || !t.contains("id") || !t.contains("content") ||
            !t["id"].is_number_integer() || !t["content"].is_string()) {
          return error(absl::StrCat("added token ", Quote(t.dump()),
                                    " needs an integer \"id\" and a string "
                                    "\"content\""));
        }
        const int64_t id = t["id"].get<int64_t>();
        std::string content = t["content"].get<std::string>();
        if (id < 0 || id > kMaxId) {
          return error(absl::StrCat("added token ", Quote(content), " has id ",
                                    id, " outside [0, ", kMaxId, "]"));
        }
        if (content.empty() || !IsValidUtf8(content)) {
          return error(absl::StrCat("added token ", id,
                                    " has empty or invalid UTF-8 content"));
        }
        const bool special = GetBool(t, "special", false);
        AddedToken added{std::move(content),
                         static_cast<int32_t>(id),
                         GetBool(t, "single_word", false),
                         GetBool(t, "lstrip", false),
                         GetBool(t, "rstrip", false),
                         GetBool(t, "normalized", !special)};
        if (static_cast<size_t>(id) >= added_bytes_of_id.size()) {
          if (!budget->Reserve(&added_bytes_of_id,
                               id + 1 - added_bytes_of_id.size())) {
            return over(absl::StrCat("the id table for added token ", id));
          }
          added_bytes_of_id.resize(id + 1);
        }
        // The decoded bytes, the NFC content and the trie of the token.
        if (!budget->TryCharge(
                3 * ParseBudget::StringBytes(added.content.size()) +
                sizeof(AddedToken)) ||
            !budget->Reserve(&tok->added_, 1)) {
          return over("added_tokens");
        }
        added_bytes_of_id[id] = ByteLevelDecode(added.content);
        if (added.normalized && tok->nfc_) {
          absl::StatusOr<std::string> nfc = Nfc(added.content);
          if (!nfc.ok()) return error(nfc.status().message());
          added.content = *std::move(nfc);
        }
        if (added.content == "<|endoftext|>") tok->eos_token_ = added.id;
        tok->added_.push_back(std::move(added));
      }
    }
    // The tries of the added tokens, sized first (a node per byte at most).
    size_t raw_bytes = 0, normalized_bytes = 0;
    for (const AddedToken& t : tok->added_) {
      (t.normalized ? normalized_bytes : raw_bytes) += t.content.size();
    }
    if (!budget->ReserveTable(&tok->raw_added_.edges, raw_bytes) ||
        !budget->ReserveTable(&tok->normalized_added_.edges,
                              normalized_bytes) ||
        !budget->Reserve(&tok->raw_added_.node_token, raw_bytes) ||
        !budget->Reserve(&tok->normalized_added_.node_token,
                         normalized_bytes)) {
      return over("the added tokens' index");
    }
    for (size_t i = 0; i < tok->added_.size(); ++i) {
      const AddedToken& t = tok->added_[i];
      (t.normalized ? tok->normalized_added_ : tok->raw_added_)
          .Insert(t.content, static_cast<int>(i));
    }
    if (!tok->eos_token_.has_value()) {
      if (auto it = vocab.find("<|endoftext|>"); it != vocab.end()) {
        tok->eos_token_ = it->second;
      }
    }

    // --- Decoding table --------------------------------------------------
    tok->vocab_size_ = static_cast<int>(
        std::max(token_of_id.size(), added_bytes_of_id.size()));
    uint64_t blob_bytes = 0;
    for (const std::string* t : token_of_id) {
      if (t != nullptr) blob_bytes += t->size();
    }
    for (const std::string& b : added_bytes_of_id) blob_bytes += b.size();
    if (!budget->TryCharge(
            ParseBudget::VectorBytes<uint32_t>(uint64_t(tok->vocab_size_) + 1) +
            ParseBudget::VectorBytes<uint64_t>(tok->vocab_size_ / 64 + 1) +
            ParseBudget::StringBytes(blob_bytes))) {
      return over(
          absl::StrCat("the id table for ids up to ", tok->vocab_size_ - 1));
    }
    tok->offsets_.assign(tok->vocab_size_ + 1, 0);
    tok->defined_.assign(tok->vocab_size_, false);
    tok->blob_.reserve(blob_bytes);
    for (int32_t id = 0; id < tok->vocab_size_; ++id) {
      tok->offsets_[id] = static_cast<uint32_t>(tok->blob_.size());
      const size_t uid = static_cast<size_t>(id);
      if (uid < added_bytes_of_id.size() && !added_bytes_of_id[uid].empty()) {
        tok->blob_.append(added_bytes_of_id[uid]);
        tok->defined_[id] = true;
      } else if (uid < token_of_id.size() && token_of_id[uid] != nullptr) {
        tok->blob_.append(ByteLevelDecode(*token_of_id[uid]));
        tok->defined_[id] = true;
      }
    }
    tok->offsets_[tok->vocab_size_] = static_cast<uint32_t>(tok->blob_.size());
  } catch (const Json::exception& e) {
    return error(e.what());
  }
  return tok;
}

void BpeTokenizer::AddedTokenIndex::Insert(std::string_view content,
                                           int token) {
  uint32_t node = 0;
  for (size_t i = 0; i < content.size(); ++i) {
    const uint8_t b = static_cast<uint8_t>(content[i]);
    uint32_t* slot =
        node == 0 ? &root[b] : &edges[(static_cast<uint64_t>(node) << 8) | b];
    if (*slot == 0) {
      *slot = static_cast<uint32_t>(node_token.size());
      node_token.push_back(-1);
    }
    node = *slot;
  }
  // A later token with the same content replaces an earlier one.
  node_token[node] = token;
}

int BpeTokenizer::AddedTokenIndex::LongestMatch(std::string_view text,
                                                size_t pos,
                                                size_t* length) const {
  uint32_t node = root[static_cast<uint8_t>(text[pos])];
  if (node == 0) return -1;
  int best = node_token[node];
  *length = 1;
  for (size_t len = 1; pos + len < text.size(); ++len) {
    auto it = edges.find((static_cast<uint64_t>(node) << 8) |
                         static_cast<uint8_t>(text[pos + len]));
    if (it == edges.end()) break;
    node = it->second;
    if (node_token[node] >= 0) {
      best = node_token[node];
      *length = len + 1;
    }
  }
  return best;
}

struct BpeTokenizer::MergeScratch {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  std::vector<QueuedMerge> queue;
  // Words already merged in this Encode() call: word -> [begin, end) in
  // cached_ids. Bounded so that hostile inputs cannot grow it without limit.
  static constexpr size_t kMaxCachedWords = 1 << 16;
  static constexpr size_t kMaxCachedWordBytes = 48;
  absl::flat_hash_map<std::string, std::pair<uint32_t, uint32_t>> cache;
  std::vector<int32_t> cached_ids;
};

template <typename GapFn>
absl::Status BpeTokenizer::SplitOnAddedTokens(std::string_view text,
                                              const AddedTokenIndex& index,
                                              GapFn gap,
                                              std::vector<int32_t>* ids) const {
  const size_t n = text.size();
  size_t start_offset = 0;  // Start of the text not yet handed out.
  size_t pos = 0;
  while (pos < n) {
    size_t length = 0;
    const int found = index.LongestMatch(text, pos, &length);
    if (found < 0) {
      ++pos;
      continue;
    }
    const AddedToken* match = &added_[found];
    size_t start = pos;
    size_t stop = pos + length;
    pos = stop;
    if (match->single_word) {
      const bool word_before =
          start > 0 && IsWordChar(LastCodePoint(text.substr(0, start)));
      const bool word_after =
          stop < n && IsWordChar(ScanUtf8Char(text.substr(stop)).code_point);
      if (word_before || word_after) continue;  // Not a whole word.
    }
    if (match->lstrip) {
      start = std::max(start - TrailingWhiteSpace(text.substr(0, start)),
                       start_offset);
    }
    if (match->rstrip) {
      stop += LeadingWhiteSpace(text.substr(stop));
      pos = stop;
    }
    if (start > start_offset) {
      absl::Status status =
          gap(text.substr(start_offset, start - start_offset));
      if (!status.ok()) return status;
    }
    ids->push_back(match->id);
    start_offset = stop;
  }
  if (start_offset < n) return gap(text.substr(start_offset));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> BpeTokenizer::Encode(
    std::string_view text) const {
  const size_t valid = ValidUtf8PrefixLength(text);
  if (valid != text.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "text is not valid UTF-8: bad byte 0x",
        absl::Hex(static_cast<uint8_t>(text[valid]), absl::kZeroPad2),
        " at byte offset ", valid));
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  MergeScratch scratch;
  auto normalized_gap = [&](std::string_view piece) {
    PreTokenizeAndMerge(piece, &scratch, &ids);
    return absl::OkStatus();
  };
  auto raw_gap = [&](std::string_view piece) -> absl::Status {
    if (!nfc_) {
      return SplitOnAddedTokens(piece, normalized_added_, normalized_gap, &ids);
    }
    absl::StatusOr<std::string> nfc = Nfc(piece);
    if (!nfc.ok()) return nfc.status();
    return SplitOnAddedTokens(*nfc, normalized_added_, normalized_gap, &ids);
  };
  absl::Status status = SplitOnAddedTokens(text, raw_added_, raw_gap, &ids);
  if (!status.ok()) return status;
  return ids;
}

void BpeTokenizer::PreTokenizeAndMerge(std::string_view text,
                                       MergeScratch* scratch,
                                       std::vector<int32_t>* ids) const {
  std::string prefixed;
  if (add_prefix_space_ && !text.empty() && text[0] != ' ') {
    prefixed = absl::StrCat(" ", AbslView(text));
    text = prefixed;
  }
  // Matches the GPT-2 regex at byte i, as Oniguruma would:
  //   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+
  //   |\s+(?!\S)|\s+
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const CodePoint c = CodePointAt(text, i);
    size_t end = i;
    if (c.cp == '\'' && i + 1 < n) {  // Contractions (all ASCII).
      const char c1 = text[i + 1];
      const char c2 = i + 2 < n ? text[i + 2] : '\0';
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
        end = i + 2;
      } else if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') ||
                 (c1 == 'l' && c2 == 'l')) {
        end = i + 3;
      }
    }
    if (end == i) {
      size_t k = i;
      CodePoint kc = c;
      if (c.cp == ' ' && i + 1 < n) {
        k = i + 1;
        kc = CodePointAt(text, k);
      }
      if (kc.cls != kSpace) {
        // ' ?\p{L}+', ' ?\p{N}+' or ' ?[^\s\p{L}\p{N}]+'.
        end = k + kc.length;
        while (end < n) {
          const CodePoint next = CodePointAt(text, end);
          if (next.cls != kc.cls) break;
          end += next.length;
        }
      } else {
        // A whitespace run starting at i. '\s+(?!\S)' leaves the last
        // whitespace character to the next piece when a non-space follows;
        // '\s+' takes a single whitespace character before a non-space.
        size_t last = i;  // Start of the run's last character.
        size_t j = i + c.length;
        while (j < n) {
          const CodePoint next = CodePointAt(text, j);
          if (next.cls != kSpace) break;
          last = j;
          j += next.length;
        }
        end = (j == n || last == i) ? j : last;
      }
    }
    MergeWord(text.substr(i, end - i), scratch, ids);
    i = end;
  }
}

void BpeTokenizer::MergeWord(std::string_view word, MergeScratch* scratch,
                             std::vector<int32_t>* ids) const {
  const size_t n = word.size();
  if (n == 1) {
    ids->push_back(byte_to_id_[static_cast<uint8_t>(word[0])]);
    return;
  }
  const bool cacheable = n <= MergeScratch::kMaxCachedWordBytes;
  if (cacheable) {
    auto it = scratch->cache.find(AbslView(word));
    if (it != scratch->cache.end()) {
      ids->insert(ids->end(), scratch->cached_ids.begin() + it->second.first,
                  scratch->cached_ids.begin() + it->second.second);
      return;
    }
  }
  std::vector<MergeScratch::Symbol>& symbols = scratch->symbols;
  symbols.resize(n);
  for (size_t i = 0; i < n; ++i) {
    symbols[i] = {byte_to_id_[static_cast<uint8_t>(word[i])],
                  static_cast<int32_t>(i) - 1,
                  i + 1 < n ? static_cast<int32_t>(i + 1) : -1, true};
  }
  auto find_merge = [&](int32_t left, int32_t right) -> const Merge* {
    auto it = merges_.find((static_cast<uint64_t>(left) << 32) |
                           static_cast<uint32_t>(right));
    return it == merges_.end() ? nullptr : &it->second;
  };
  std::vector<QueuedMerge>& queue = scratch->queue;
  queue.clear();
  for (size_t i = 0; i + 1 < n; ++i) {
    if (const Merge* m = find_merge(symbols[i].id, symbols[i + 1].id)) {
      queue.push_back({m->rank, static_cast<int32_t>(i), m->new_id});
    }
  }
  std::make_heap(queue.begin(), queue.end());
  // Same procedure (and tie-breaking) as Hugging Face's Word::merge_all.
  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end());
    const QueuedMerge top = queue.back();
    queue.pop_back();
    MergeScratch::Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    const int32_t right_pos = left.next;
    const MergeScratch::Symbol right = symbols[right_pos];
    const Merge* current = find_merge(left.id, right.id);
    if (current == nullptr || current->new_id != top.new_id)
      continue;  // Stale.
    left.id = top.new_id;
    left.next = right.next;
    symbols[right_pos].alive = false;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* m = find_merge(symbols[left.prev].id, left.id)) {
        queue.push_back({m->rank, left.prev, m->new_id});
        std::push_heap(queue.begin(), queue.end());
      }
    }
    if (left.next >= 0) {
      if (const Merge* m = find_merge(left.id, symbols[left.next].id)) {
        queue.push_back({m->rank, top.pos, m->new_id});
        std::push_heap(queue.begin(), queue.end());
      }
    }
  }
  const size_t first = ids->size();
  for (int32_t i = 0; i >= 0; i = symbols[i].next)
    ids->push_back(symbols[i].id);
  if (cacheable && scratch->cache.size() < MergeScratch::kMaxCachedWords) {
    const auto begin = static_cast<uint32_t>(scratch->cached_ids.size());
    scratch->cached_ids.insert(scratch->cached_ids.end(), ids->begin() + first,
                               ids->end());
    scratch->cache.emplace(
        std::string(word),
        std::make_pair(begin,
                       static_cast<uint32_t>(scratch->cached_ids.size())));
  }
}

absl::StatusOr<std::string> BpeTokenizer::Decode(
    absl::Span<const int32_t> ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || id >= vocab_size_ || !defined_[id]) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", id, " (at position ", i,
                       ") is not in the BPE vocabulary ", source_, " (ids 0..",
                       vocab_size_ - 1, ")"));
    }
    out.append(blob_, offsets_[id], offsets_[id + 1] - offsets_[id]);
  }
  return out;
}

}  // namespace rwkv::engine
