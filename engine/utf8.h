// UTF-8 helpers shared by the tokenizers and the stream decoder: validation,
// character scanning with the Unicode "maximal subpart" rule, and repair.
// All functions are pure and thread-safe.
#ifndef RWKV_ENGINE_UTF8_H_
#define RWKV_ENGINE_UTF8_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace rwkv::engine {

// The replacement character U+FFFD encoded as UTF-8.
inline constexpr std::string_view kUtf8Replacement = "\xEF\xBF\xBD";

// Outcome of decoding the character at the start of a byte string.
enum class Utf8ScanStatus {
  kValid,       // `length` bytes encode `code_point`.
  kIncomplete,  // All `length` bytes (the whole input) are a valid but
                // truncated prefix of a character; more bytes may complete it.
  kInvalid,     // The first `length` (>= 1) bytes are a maximal ill-formed
                // subpart (Unicode 15, section 3.9): they can never be valid.
};

struct Utf8Scan {
  Utf8ScanStatus status;
  int length;           // Bytes consumed; 0 only for empty input.
  char32_t code_point;  // Meaningful only when status == kValid.
};

// Decodes the character at the start of `bytes` (strict UTF-8: no overlong
// forms, no surrogates, nothing above U+10FFFF). Empty input gives
// {kIncomplete, 0, 0}.
Utf8Scan ScanUtf8Char(std::string_view bytes);

// Length of the longest prefix of `bytes` that is well-formed UTF-8. Equals
// bytes.size() exactly when the whole string is valid.
size_t ValidUtf8PrefixLength(std::string_view bytes);

// True when `bytes` is well-formed UTF-8.
bool IsValidUtf8(std::string_view bytes);

// Number of trailing bytes (0 to 3) of `bytes` that form a truncated but so
// far valid multi-byte character, i.e. bytes a streaming decoder must hold
// back. bytes.size() - Utf8IncompleteSuffixLength(bytes) is the length of
// the longest prefix that ends on a complete character (or on an invalid
// byte, which can never be completed).
size_t Utf8IncompleteSuffixLength(std::string_view bytes);

// Returns `bytes` with every maximal ill-formed subpart (and a truncated
// character at the end) replaced by U+FFFD, as Python's
// bytes.decode("utf-8", "replace") does. Valid input is returned unchanged.
std::string SanitizeUtf8(std::string_view bytes);

// Appends the UTF-8 encoding of `code_point` to `out`. Surrogates and values
// above U+10FFFF are written as U+FFFD.
void AppendUtf8(char32_t code_point, std::string* out);

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_UTF8_H_
