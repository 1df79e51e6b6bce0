// CompletionFormat: the reply of POST /v1/chat/completions (kChat: objects
// "chat.completion" and "chat.completion.chunk", the text in
// choices[0].message / .delta) and POST /v1/completions (kText: object
// "text_completion", the text in choices[0].text), exactly as OpenAI sends
// them. A stream is: a first chunk (chat: the assistant role), one chunk per
// piece of text, a chunk with the finish reason, with
// stream_options.include_usage a chunk with empty choices and the usage
// (every other chunk then has "usage": null), and "data: [DONE]". An error
// mid-stream is sent as data: {"error": {...}} before [DONE].
// Extension (as vLLM's): with return_token_ids every choice also carries the
// token ids it holds ("token_ids"), and chunks whose tokens add no text yet
// are sent too.
#ifndef RWKV_SERVER_HTTP_COMPLETION_FORMAT_H_
#define RWKV_SERVER_HTTP_COMPLETION_FORMAT_H_

#include <cstdint>
#include <string>

#include "server/http/reply_format.h"

namespace rwkv::server {

class CompletionFormat final : public ReplyFormat {
 public:
  enum class Kind { kChat, kText };

  CompletionFormat(Kind kind, std::string model, bool include_usage,
                   bool return_token_ids = false);

  std::string StreamStart() override;
  std::string StreamChunk(const TurnChunk& chunk) override;
  std::string StreamEnd(const std::string& text,
                        const TurnChunk& last) override;
  std::string StreamError(const absl::Status& status) override;
  nlohmann::json Whole(const std::string& text,
                       const TurnChunk& last) const override;

  const std::string& id() const { return id_; }

 private:
  // A chunk object around `choice` (an empty choices list if null).
  nlohmann::json Chunk(nlohmann::json choice) const;
  // A streamed choice with this text (chat: delta) and finish reason.
  nlohmann::json StreamChoice(absl::string_view text,
                              nlohmann::json finish_reason) const;

  const Kind kind_;
  const std::string model_;
  const bool include_usage_;
  const bool return_token_ids_;
  const std::string id_;
  const int64_t created_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_COMPLETION_FORMAT_H_
