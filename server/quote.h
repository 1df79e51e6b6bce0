// Quote: how a value the client sent is echoed in an error message. Only a
// short printable head is shown, with the value's length when it is cut, so
// a hostile value can never make a message (gRPC trailing metadata) large.
#ifndef RWKV_SERVER_QUOTE_H_
#define RWKV_SERVER_QUOTE_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace rwkv::server {

// Most characters of a client value shown in a message.
inline constexpr size_t kMaxQuotedChars = 64;

// 'value' if it is at most kMaxQuotedChars, else 'head...' (N bytes).
// Bytes outside printable ASCII are shown as '?'.
std::string Quote(absl::string_view value);

}  // namespace rwkv::server

#endif  // RWKV_SERVER_QUOTE_H_
