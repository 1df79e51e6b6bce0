#include "engine/utf8.h"

#include <cstdint>

namespace rwkv::engine {
namespace {

// Lead byte properties: number of continuation bytes and the allowed range of
// the first continuation byte (Unicode Table 3-7). Returns false for bytes
// that cannot start a character.
bool LeadInfo(uint8_t lead, int* continuations, uint8_t* lo, uint8_t* hi) {
  *lo = 0x80;
  *hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    *continuations = 1;
  } else if (lead == 0xE0) {
    *continuations = 2;
    *lo = 0xA0;
  } else if (lead == 0xED) {
    *continuations = 2;
    *hi = 0x9F;
  } else if (lead >= 0xE1 && lead <= 0xEF) {
    *continuations = 2;
  } else if (lead == 0xF0) {
    *continuations = 3;
    *lo = 0x90;
  } else if (lead == 0xF4) {
    *continuations = 3;
    *hi = 0x8F;
  } else if (lead >= 0xF1 && lead <= 0xF3) {
    *continuations = 3;
  } else {
    return false;
  }
  return true;
}

}  // namespace

Utf8Scan ScanUtf8Char(std::string_view bytes) {
  if (bytes.empty()) return {Utf8ScanStatus::kIncomplete, 0, 0};
  const uint8_t lead = static_cast<uint8_t>(bytes[0]);
  if (lead < 0x80) return {Utf8ScanStatus::kValid, 1, lead};
  int continuations = 0;
  uint8_t lo = 0, hi = 0;
  if (!LeadInfo(lead, &continuations, &lo, &hi)) {
    return {Utf8ScanStatus::kInvalid, 1, 0};
  }
  char32_t cp = lead & (0x3F >> continuations);
  for (int i = 1; i <= continuations; ++i) {
    if (static_cast<size_t>(i) >= bytes.size()) {
      return {Utf8ScanStatus::kIncomplete, i, 0};
    }
    const uint8_t b = static_cast<uint8_t>(bytes[i]);
    if (b < lo || b > hi) return {Utf8ScanStatus::kInvalid, i, 0};
    lo = 0x80;
    hi = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
  }
  return {Utf8ScanStatus::kValid, continuations + 1, cp};
}

size_t ValidUtf8PrefixLength(std::string_view bytes) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    // ASCII fast path.
    if (static_cast<uint8_t>(bytes[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const Utf8Scan scan = ScanUtf8Char(bytes.substr(pos));
    if (scan.status != Utf8ScanStatus::kValid) break;
    pos += scan.length;
  }
  return pos;
}

bool IsValidUtf8(std::string_view bytes) {
  return ValidUtf8PrefixLength(bytes) == bytes.size();
}

size_t Utf8IncompleteSuffixLength(std::string_view bytes) {
  // A truncated character is at most 3 bytes long, so only the last 3 bytes
  // can start one.
  const size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const uint8_t b = static_cast<uint8_t>(bytes[n - back]);
    if (b >= 0x80 && b < 0xC0) continue;  // Continuation byte: look further.
    const Utf8Scan scan = ScanUtf8Char(bytes.substr(n - back));
    return scan.status == Utf8ScanStatus::kIncomplete ? back : 0;
  }
  return 0;
}

std::string SanitizeUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    const Utf8Scan scan = ScanUtf8Char(bytes.substr(pos));
    if (scan.status == Utf8ScanStatus::kValid) {
      out.append(bytes.data() + pos, scan.length);
    } else {
      out.append(kUtf8Replacement);
    }
    pos += scan.length;
  }
  return out;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    out->append(kUtf8Replacement);
  } else if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace rwkv::engine
