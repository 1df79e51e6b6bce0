#include "common/byte_size.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace rwkv::common {

absl::StatusOr<int64_t> ParseByteSize(absl::string_view text) {
  absl::string_view digits = text;
  int shift = 0;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'K':
      case 'k':
        shift = 10;
        break;
      case 'M':
      case 'm':
        shift = 20;
        break;
      case 'G':
      case 'g':
        shift = 30;
        break;
      default:
        break;
    }
    if (shift != 0) digits.remove_suffix(1);
  }
  const int64_t unit = int64_t{1} << shift;
  int64_t n = 0;
  // SimpleAtoi takes decimal digits only (no sign is rejected below).
  if (digits.empty() || !absl::SimpleAtoi(digits, &n) || n < 0 ||
      n > kMaxByteSize / unit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected a byte count like 512M, got '", std::string(text), "'"));
  }
  return n * unit;
}

std::string FormatByteSize(int64_t bytes) {
  if (bytes == 0) return "0";
  for (const auto& [shift, suffix] :
       {std::pair<int, const char*>{30, "G"}, {20, "M"}, {10, "K"}}) {
    const int64_t unit = int64_t{1} << shift;
    if (bytes % unit == 0) return absl::StrCat(bytes / unit, suffix);
  }
  return absl::StrCat(bytes);
}

}  // namespace rwkv::common
