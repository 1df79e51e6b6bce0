#include "engine/world_tokenizer.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "engine/parse_budget.h"
#include "engine/utf8.h"

namespace rwkv::engine {
namespace {

// Debian's Abseil has its own string_view type; convert explicitly.
absl::string_view AbslView(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

std::string Escaped(std::string_view s) {
  return absl::CHexEscape(AbslView(s));
}

std::string_view StripWhitespace(std::string_view s) {
  while (!s.empty() &&
         absl::ascii_isspace(static_cast<unsigned char>(s.front()))) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         absl::ascii_isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  return s;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads exactly `digits` hex digits at text[*pos]; advances *pos.
bool ReadHex(std::string_view text, size_t* pos, int digits, uint32_t* value) {
  if (text.size() - *pos < static_cast<size_t>(digits)) return false;
  uint32_t v = 0;
  for (int i = 0; i < digits; ++i) {
    const int h = HexValue(text[*pos + i]);
    if (h < 0) return false;
    v = (v << 4) | static_cast<uint32_t>(h);
  }
  *pos += digits;
  *value = v;
  return true;
}

// Parses a Python 3 str or bytes literal ('...', "...", b'...', u'...') as
// written by repr(). Returns the UTF-8 encoding of a str, the bytes of a
// bytes literal. Errors describe the problem without location.
absl::Status ParsePythonLiteral(std::string_view lit, std::string* out_bytes) {
  size_t pos = 0;
  bool is_bytes = false;
  if (!lit.empty() && (lit[0] == 'b' || lit[0] == 'B')) {
    is_bytes = true;
    pos = 1;
  } else if (!lit.empty() && (lit[0] == 'u' || lit[0] == 'U')) {
    pos = 1;
  }
  if (pos >= lit.size() || (lit[pos] != '\'' && lit[pos] != '"')) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a quoted Python str or bytes literal, got `",
                     Escaped(lit), "`"));
  }
  const char quote = lit[pos];
  if (lit.size() < pos + 2 || lit.back() != quote) {
    return absl::InvalidArgumentError(
        absl::StrCat("unterminated literal `", Escaped(lit), "`"));
  }
  const std::string_view body = lit.substr(pos + 1, lit.size() - pos - 2);
  std::string& out = *out_bytes;
  size_t i = 0;
  while (i < body.size()) {
    const char c = body[i];
    if (c == quote) {
      return absl::InvalidArgumentError(
          absl::StrCat("unescaped quote inside literal `", Escaped(lit), "`"));
    }
    if (c != '\\') {
      if (is_bytes && static_cast<uint8_t>(c) >= 0x80) {
        return absl::InvalidArgumentError(absl::StrCat(
            "non-ASCII character in bytes literal `", Escaped(lit), "`"));
      }
      out.push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= body.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "literal ends with a lone backslash `", Escaped(lit), "`"));
    }
    const char e = body[i + 1];
    i += 2;
    switch (e) {
      case '\\':
        out.push_back('\\');
        break;
      case '\'':
        out.push_back('\'');
        break;
      case '"':
        out.push_back('"');
        break;
      case 'a':
        out.push_back('\a');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'v':
        out.push_back('\v');
        break;
      case '0':
      case '1':
      case '2':
      case '3':
      case '4':
      case '5':
      case '6':
      case '7': {
        uint32_t v = static_cast<uint32_t>(e - '0');
        for (int k = 0;
             k < 2 && i < body.size() && body[i] >= '0' && body[i] <= '7';
             ++k, ++i) {
          v = v * 8 + static_cast<uint32_t>(body[i] - '0');
        }
        if (is_bytes) {
          if (v > 0xFF) {
            return absl::InvalidArgumentError(
                absl::StrCat("octal escape above \\377 in bytes literal `",
                             Escaped(lit), "`"));
          }
          out.push_back(static_cast<char>(v));
        } else {
          AppendUtf8(v, &out);
        }
        break;
      }
      case 'x': {
        uint32_t v = 0;
        if (!ReadHex(body, &i, 2, &v)) {
          return absl::InvalidArgumentError(
              absl::StrCat("truncated \\xXX escape in `", Escaped(lit), "`"));
        }
        if (is_bytes) {
          out.push_back(static_cast<char>(v));
        } else {
          AppendUtf8(v, &out);
        }
        break;
      }
      case 'u':
      case 'U':
      case 'N': {
        if (is_bytes) {  // Not escapes in bytes literals: kept verbatim.
          out.push_back('\\');
          out.push_back(e);
          break;
        }
        if (e == 'N') {
          return absl::InvalidArgumentError(absl::StrCat(
              "\\N{...} escapes are not supported, in `", Escaped(lit), "`"));
        }
        uint32_t v = 0;
        if (!ReadHex(body, &i, e == 'u' ? 4 : 8, &v)) {
          return absl::InvalidArgumentError(
              absl::StrCat("truncated \\", std::string(1, e), " escape in `",
                           Escaped(lit), "`"));
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "escape for code point 0x", absl::Hex(v),
              " cannot be encoded as UTF-8, in `", Escaped(lit), "`"));
        }
        AppendUtf8(v, &out);
        break;
      }
      default:
        // Python keeps unknown escapes verbatim (backslash included); the
        // character after the backslash is re-read as ordinary text.
        out.push_back('\\');
        --i;
        break;
    }
  }
  return absl::OkStatus();
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return c >= '0' && c <= '9'; });
}

// Parses a non-negative decimal number of at most 9 digits.
bool ParseSmallNumber(std::string_view s, int64_t* value) {
  if (!AllDigits(s) || s.size() > 9) return false;
  int64_t v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  *value = v;
  return true;
}

// One token line: its id, line number and bytes (in the blob).
struct Entry {
  int32_t id;
  uint32_t line;
  uint32_t offset;
  uint32_t length;
};

}  // namespace

absl::StatusOr<std::unique_ptr<WorldTokenizer>> WorldTokenizer::FromString(
    std::string_view contents, std::string_view source) {
  return GuardAllocation(
      source, [&]() -> absl::StatusOr<std::unique_ptr<WorldTokenizer>> {
        ParseBudget budget = ParseBudget::ForInput(contents.size());
        return Parse(contents, source, &budget);
      });
}

absl::StatusOr<std::unique_ptr<WorldTokenizer>> WorldTokenizer::Parse(
    std::string_view contents, std::string_view source, ParseBudget* budget) {
  auto over = [&](const std::string& what) {
    return budget->Exceeded(absl::StrCat(AbslView(source), ": ", what));
  };
  if (contents.size() >= 3 && contents.substr(0, 3) == "\xEF\xBB\xBF") {
    contents.remove_prefix(3);  // UTF-8 byte order mark.
  }
  if (contents.size() >= (uint64_t{1} << 32)) {
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(source), ": a vocabulary file of ",
                     contents.size(), " bytes is too large"));
  }
  // Token bytes are never longer than their literals: one blob sized by the
  // file holds them all, in file order.
  auto tok = std::unique_ptr<WorldTokenizer>(new WorldTokenizer());
  std::string bytes;
  std::vector<Entry> entries;
  const size_t lines =
      static_cast<size_t>(std::count(contents.begin(), contents.end(), '\n')) +
      1;
  if (!budget->TryCharge(ParseBudget::StringBytes(contents.size()) +
                         ParseBudget::StringBytes(source.size())) ||
      !budget->Reserve(&entries, lines)) {
    return over(absl::StrCat("a vocabulary of ", lines, " lines"));
  }
  bytes.reserve(contents.size());
  int line_number = 0;
  size_t line_start = 0;
  while (line_start < contents.size()) {
    size_t line_end = contents.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = contents.size();
    std::string_view line = contents.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (StripWhitespace(line).empty()) continue;

    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat(AbslView(source), ":", line_number, ": ", what));
    };
    const size_t bad = ValidUtf8PrefixLength(line);
    if (bad != line.size()) {
      return error(absl::StrCat("line is not valid UTF-8 (byte offset ", bad,
                                " in the line)"));
    }
    const size_t first_space = line.find(' ');
    const size_t last_space = line.rfind(' ');
    if (first_space == std::string_view::npos || first_space == last_space) {
      return error(
          "expected `<id> <Python str or bytes literal> <byte length>`");
    }
    int64_t id = 0;
    if (!ParseSmallNumber(line.substr(0, first_space), &id)) {
      return error(absl::StrCat("bad token id `",
                                Escaped(line.substr(0, first_space)),
                                "` (expected a decimal number)"));
    }
    if (id == kEndOfText) {
      return error("id 0 is reserved for <|endoftext|> and must not be listed");
    }
    if (id > kMaxId) {
      return error(
          absl::StrCat("token id ", id, " is larger than the limit ", kMaxId));
    }
    int64_t length = 0;
    const std::string_view length_text = line.substr(last_space + 1);
    if (!ParseSmallNumber(length_text, &length)) {
      return error(absl::StrCat("bad byte length `", Escaped(length_text),
                                "` (expected a decimal number)"));
    }
    const std::string_view literal = StripWhitespace(
        line.substr(first_space + 1, last_space - first_space - 1));
    const size_t offset = bytes.size();
    if (absl::Status s = ParsePythonLiteral(literal, &bytes); !s.ok()) {
      return error(absl::StrCat("token ", id, ": ", s.message()));
    }
    const size_t size = bytes.size() - offset;
    if (static_cast<int64_t>(size) != length) {
      return error(absl::StrCat("token ", id, " is ", size,
                                " bytes long but its length column says ",
                                length));
    }
    if (size == 0) return error(absl::StrCat("token ", id, " is empty"));
    entries.push_back(
        {static_cast<int32_t>(id), static_cast<uint32_t>(line_number),
         static_cast<uint32_t>(offset), static_cast<uint32_t>(size)});
  }
  if (entries.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(source), ": the vocabulary file has no tokens"));
  }
  tok->source_ = std::string(source);

  // The trie's size, counted first (tokens in byte order: each adds the
  // bytes it does not share with the previous one), so that its tables are
  // allocated once at their final size.
  {
    std::vector<uint32_t> order;
    if (!budget->Reserve(&order, entries.size())) return over("the token trie");
    for (uint32_t i = 0; i < entries.size(); ++i) order.push_back(i);
    auto token = [&](uint32_t i) {
      return std::string_view(bytes.data() + entries[i].offset,
                              entries[i].length);
    };
    std::sort(order.begin(), order.end(),
              [&](uint32_t a, uint32_t b) { return token(a) < token(b); });
    size_t nodes = 0, first_bytes = 0;
    std::string_view previous;
    for (uint32_t i : order) {
      const std::string_view t = token(i);
      size_t common = 0;
      while (common < t.size() && common < previous.size() &&
             t[common] == previous[common]) {
        ++common;
      }
      nodes += t.size() - common;
      if (common == 0) ++first_bytes;
      previous = t;
    }
    budget->Refund(ParseBudget::VectorBytes<uint32_t>(order.capacity()));
    if (!budget->Reserve(&tok->node_token_, nodes + 1) ||
        !budget->ReserveTable(&tok->edges_, nodes - first_bytes)) {
      return over(absl::StrCat("the token trie (", nodes, " nodes)"));
    }
  }
  // The trie is built in file order so that a later duplicate token string
  // wins, as in the reference implementation.
  tok->node_token_.push_back(-1);
  for (const Entry& e : entries) {
    const std::string_view token(bytes.data() + e.offset, e.length);
    if (!tok->InsertIntoTrie(token, e.id, budget)) {
      return over(
          absl::StrCat("the token trie (", tok->node_token_.size(), " nodes)"));
    }
  }
  for (int b = 0; b < 256; ++b) {
    const uint32_t child = tok->root_children_[b];
    if (child == 0 || tok->node_token_[child] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(AbslView(source),
                       ": the vocabulary has no single-byte token for byte 0x",
                       absl::Hex(b, absl::kZeroPad2),
                       ", so some inputs could not be encoded"));
    }
  }

  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.id < b.id; });
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].id == entries[i - 1].id) {
      return absl::InvalidArgumentError(absl::StrCat(
          AbslView(source), ":", entries[i].line, ": duplicate token id ",
          entries[i].id, " (first defined on line ", entries[i - 1].line, ")"));
    }
  }
  const int32_t vocab_size = entries.back().id + 1;
  // The id tables are sized by the largest id, which a small file can make
  // large: they are charged like everything else.
  if (!budget->TryCharge(ParseBudget::VectorBytes<uint32_t>(
                             static_cast<uint64_t>(vocab_size) + 1) +
                         ParseBudget::VectorBytes<uint64_t>(
                             static_cast<uint64_t>(vocab_size) / 64 + 1) +
                         ParseBudget::StringBytes(bytes.size()))) {
    return over(absl::StrCat("the id table for ids up to ", vocab_size - 1));
  }
  tok->vocab_size_ = vocab_size;
  tok->offsets_.assign(tok->vocab_size_ + 1, 0);
  tok->defined_.assign(tok->vocab_size_, false);
  tok->defined_[kEndOfText] = true;
  tok->blob_.reserve(bytes.size());
  size_t next = 0;
  for (int32_t id = 0; id < tok->vocab_size_; ++id) {
    tok->offsets_[id] = static_cast<uint32_t>(tok->blob_.size());
    if (next < entries.size() && entries[next].id == id) {
      tok->blob_.append(bytes, entries[next].offset, entries[next].length);
      tok->defined_[id] = true;
      ++next;
    }
  }
  tok->offsets_[tok->vocab_size_] = static_cast<uint32_t>(tok->blob_.size());
  return tok;
}

bool WorldTokenizer::InsertIntoTrie(std::string_view bytes, int32_t id,
                                    ParseBudget* budget) {
  uint32_t node = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const uint8_t b = static_cast<uint8_t>(bytes[i]);
    uint32_t* slot;
    if (node == 0) {
      slot = &root_children_[b];
    } else {
      if (!budget->ReserveTable(&edges_, 1)) return false;
      slot = &edges_[(static_cast<uint64_t>(node) << 8) | b];
    }
    if (*slot == 0) {
      if (!budget->Reserve(&node_token_, 1)) return false;
      *slot = static_cast<uint32_t>(node_token_.size());
      node_token_.push_back(-1);
    }
    node = *slot;
  }
  node_token_[node] = id;
  return true;
}

absl::StatusOr<std::vector<int32_t>> WorldTokenizer::Encode(
    std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  const size_t n = text.size();
  size_t pos = 0;
  while (pos < n) {
    // Every single byte is a token (checked when loading).
    uint32_t node = root_children_[static_cast<uint8_t>(text[pos])];
    int32_t best_id = node_token_[node];
    size_t best_len = 1;
    for (size_t len = 1; pos + len < n; ++len) {
      auto it = edges_.find((static_cast<uint64_t>(node) << 8) |
                            static_cast<uint8_t>(text[pos + len]));
      if (it == edges_.end()) break;
      node = it->second;
      if (node_token_[node] >= 0) {
        best_id = node_token_[node];
        best_len = len + 1;
      }
    }
    ids.push_back(best_id);
    pos += best_len;
  }
  return ids;
}

absl::StatusOr<std::string> WorldTokenizer::Decode(
    absl::Span<const int32_t> ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || id >= vocab_size_ || !defined_[id]) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", id, " (at position ", i,
                       ") is not in the World vocabulary ", source_,
                       " (ids 0..", vocab_size_ - 1, ")"));
    }
    out.append(TokenBytes(id));
  }
  return out;
}

}  // namespace rwkv::engine
