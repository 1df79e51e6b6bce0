#include "server/quote.h"

#include "absl/strings/str_cat.h"

namespace rwkv::server {

std::string Quote(absl::string_view value) {
  std::string out = "'";
  for (char c : value.substr(0, kMaxQuotedChars)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (value.size() <= kMaxQuotedChars) return out + "'";
  return absl::StrCat(out, "...' (", value.size(), " bytes)");
}

}  // namespace rwkv::server
