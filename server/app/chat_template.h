// ChatTemplate: how a chat message becomes prompt text, and where the reply
// ends. "{message}" in the template is replaced by the message; blank lines
// in the message collapse to one newline (as ChatRWKV does), so a message
// can never contain the "\n\n" that separates turns. Immutable; thread-safe.
#ifndef RWKV_SERVER_APP_CHAT_TEMPLATE_H_
#define RWKV_SERVER_APP_CHAT_TEMPLATE_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace rwkv::server {

class ChatTemplate {
 public:
  ChatTemplate(std::string pattern, std::vector<std::string> stops)
      : pattern_(std::move(pattern)), stops_(std::move(stops)) {}

  // The prompt text for one user message.
  std::string Format(absl::string_view message) const;
  // The stop strings that end a reply.
  const std::vector<std::string>& stops() const { return stops_; }
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::vector<std::string> stops_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_CHAT_TEMPLATE_H_
