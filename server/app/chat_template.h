// ChatTemplate: how chat messages become prompt text, and where the reply
// ends. "{message}" in the template is replaced by the message; blank lines
// in a message collapse to one newline (as ChatRWKV does), so a message can
// never contain the "\n\n" that separates turns.
//
// Conversations (the HTTP front's message lists) use the same template, cut
// into pieces: the default "User: {message}\n\nAssistant:" is read as
//   user prefix "User: " | message | separator "\n\n" | assistant prefix
//   "Assistant:"
// where the separator is the first stop string. A reply is the assistant's
// text as it was sent (verbatim: it already starts where the model began,
// usually with a space) followed by the separator, exactly what the model's
// state saw when the reply ended at the stop. A template that does not
// split that way (the text after {message} does not start with the first
// stop) keeps Format() for every user message and has no assistant prefix.
// System messages use their own pattern. Immutable; thread-safe.
#ifndef RWKV_SERVER_APP_CHAT_TEMPLATE_H_
#define RWKV_SERVER_APP_CHAT_TEMPLATE_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace rwkv::server {

class ChatTemplate {
 public:
  ChatTemplate(std::string pattern, std::vector<std::string> stops,
               std::string system_pattern = "System: {message}\n\n");

  // The prompt text for one user message followed by the assistant's turn
  // (what a Chat call feeds).
  std::string Format(absl::string_view message) const;
  // A user message that the assistant does not answer next (another
  // message follows it): user prefix + message + separator.
  std::string UserMessage(absl::string_view message) const;
  std::string SystemMessage(absl::string_view message) const;
  // What starts the assistant's turn when it does not follow a user
  // message ("" for a template that does not split).
  const std::string& assistant_prefix() const { return assistant_prefix_; }
  // A reply as the model's state holds it when it ended at the separator:
  // the text (blank lines collapsed, nothing else changed) + separator.
  std::string Reply(absl::string_view text) const;

  // The stop strings that end a reply.
  const std::vector<std::string>& stops() const { return stops_; }
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::vector<std::string> stops_;
  std::string system_pattern_;
  // The pattern's pieces (see the file comment).
  bool splits_ = false;
  std::string user_prefix_;
  std::string separator_;
  std::string assistant_prefix_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_CHAT_TEMPLATE_H_
