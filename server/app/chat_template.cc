#include "server/app/chat_template.h"

#include "absl/strings/str_replace.h"

namespace rwkv::server {

std::string ChatTemplate::Format(absl::string_view message) const {
  std::string msg = absl::StrReplaceAll(message, {{"\r\n", "\n"}});
  while (msg.find("\n\n") != std::string::npos) {
    msg = absl::StrReplaceAll(msg, {{"\n\n", "\n"}});
  }
  return absl::StrReplaceAll(pattern_, {{"{message}", msg}});
}

}  // namespace rwkv::server
