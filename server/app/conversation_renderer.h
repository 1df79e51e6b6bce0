// ConversationRenderer: a conversation (system, user and assistant messages)
// as prompt tokens, in the chat template (chat_template.h). Each piece (a
// message's text; the assistant prefix before a reply that follows no user
// message) is tokenized on its own and the ids are concatenated, so the
// tokens of a conversation are exactly a prefix of the tokens of the same
// conversation with more messages: a tokenizer that merges across the
// boundary of two pieces cannot change the ids there. That prefix property
// is what lets a resent history find its state in the prefix cache.
//
// Pieces: a system message -> SystemMessage; a user message -> Format (its
// text and the assistant prefix) when the assistant answers it next (the
// next message is the assistant's, or the reply being asked for), else
// UserMessage; an assistant message -> Reply (its text and the separator),
// after the assistant prefix unless a user message precedes it. A list that
// ends with a message that is not the user's gets the assistant prefix.
// Thread-safe (immutable).
#ifndef RWKV_SERVER_APP_CONVERSATION_RENDERER_H_
#define RWKV_SERVER_APP_CONVERSATION_RENDERER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/app/app_types.h"
#include "server/app/chat_template.h"
#include "server/app/prompt_tokenizer.h"

namespace rwkv::server {

class ConversationRenderer {
 public:
  // Both must outlive the renderer.
  ConversationRenderer(const ChatTemplate* chat_template,
                       const PromptTokenizer* prompts, int max_tokens)
      : template_(chat_template), prompts_(prompts), max_tokens_(max_tokens) {}

  // The tokens of `messages` followed by the assistant's turn. Errors
  // (INVALID_ARGUMENT) name the message's field: empty text (an assistant
  // message may be empty: a reply can be), invalid UTF-8,
  // too long; `list_field` names an empty list; the whole conversation is
  // at most `max_tokens`.
  absl::StatusOr<std::vector<int32_t>> Render(
      absl::Span<const ChatMessage> messages,
      absl::string_view list_field) const;

  // The tokens a reply with this text renders to when the conversation is
  // sent again (ChatTemplate::Reply, as one piece).
  absl::StatusOr<std::vector<int32_t>> RenderReply(
      absl::string_view text) const;

  const ChatTemplate& chat_template() const { return *template_; }

 private:
  // Appends the tokens of one piece.
  absl::Status Append(const std::string& piece, absl::string_view field,
                      std::vector<int32_t>& out) const;

  const ChatTemplate* const template_;
  const PromptTokenizer* const prompts_;
  const int max_tokens_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_CONVERSATION_RENDERER_H_
