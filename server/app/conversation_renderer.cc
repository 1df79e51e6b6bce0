#include "server/app/conversation_renderer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/app/field_error.h"
#include "server/app/request_checks.h"

namespace rwkv::server {

using Role = ChatMessage::Role;

absl::Status ConversationRenderer::Append(const std::string& piece,
                                          absl::string_view field,
                                          std::vector<int32_t>& out) const {
  if (piece.empty()) return absl::OkStatus();
  absl::StatusOr<std::vector<int32_t>> tokens =
      prompts_->Tokenize(piece, field);
  if (!tokens.ok()) return tokens.status();
  if (out.size() + tokens->size() > static_cast<size_t>(max_tokens_)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the conversation is too long: more than ", max_tokens_, " tokens at ",
        field, " (limit: --max-conversation-tokens)"));
  }
  out.insert(out.end(), tokens->begin(), tokens->end());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> ConversationRenderer::Render(
    absl::Span<const ChatMessage> messages,
    absl::string_view list_field) const {
  if (messages.empty()) {
    return FieldError(list_field, "is empty");
  }
  std::vector<int32_t> out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    // The byte limit first, before anything scans the text.
    if (absl::Status s = prompts_->CheckBytes(m.content, m.field); !s.ok()) {
      return WithField(std::move(s), m.field);
    }
    // A reply may be empty (the model ended its turn at once).
    if (absl::Status s =
            CheckText(m.content, m.field, m.role == Role::kAssistant);
        !s.ok()) {
      return WithField(std::move(s), m.field);
    }
    std::string piece;
    switch (m.role) {
      case Role::kSystem:
        piece = template_->SystemMessage(m.content);
        break;
      case Role::kUser: {
        const bool answered_next = i + 1 == messages.size() ||
                                   messages[i + 1].role == Role::kAssistant;
        piece = answered_next ? template_->Format(m.content)
                              : template_->UserMessage(m.content);
        break;
      }
      case Role::kAssistant:
        if (i == 0 || messages[i - 1].role != Role::kUser) {
          if (absl::Status s =
                  Append(template_->assistant_prefix(), m.field, out);
              !s.ok()) {
            return WithField(std::move(s), m.field);
          }
        }
        piece = template_->Reply(m.content);
        break;
    }
    if (absl::Status s = Append(piece, m.field, out); !s.ok()) {
      return WithField(std::move(s), m.field);
    }
  }
  if (messages.back().role != Role::kUser) {
    if (absl::Status s =
            Append(template_->assistant_prefix(), messages.back().field, out);
        !s.ok()) {
      return s;
    }
  }
  return out;
}

absl::StatusOr<std::vector<int32_t>> ConversationRenderer::RenderReply(
    absl::string_view text) const {
  std::vector<int32_t> out;
  if (absl::Status s = Append(template_->Reply(text), "reply", out); !s.ok()) {
    return s;
  }
  return out;
}

}  // namespace rwkv::server
