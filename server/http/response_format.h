// ResponseFormat: the reply of POST /v1/responses (OpenAI's Responses API):
// a "response" object with one assistant "message" output item holding one
// "output_text" part. Whole() is also the object stored with the response
// (GET /v1/responses/{id} returns it). A stream is the API's typed events,
// each with its sequence_number: response.created, response.in_progress,
// response.output_item.added, response.content_part.added, one
// response.output_text.delta per piece of text, response.output_text.done,
// response.content_part.done, response.output_item.done, and
// response.completed (response.incomplete when max_output_tokens cut the
// reply); a failure is an "error" event. No [DONE] (the API has none).
#ifndef RWKV_SERVER_HTTP_RESPONSE_FORMAT_H_
#define RWKV_SERVER_HTTP_RESPONSE_FORMAT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "server/http/reply_format.h"

namespace rwkv::server {

class ResponseFormat final : public ReplyFormat {
 public:
  // What the response object echoes of its request.
  struct Request {
    std::string id;  // "resp_..."
    std::string model;
    std::optional<std::string> instructions;
    std::optional<std::string> previous_response_id;
    bool store = true;
    std::optional<int64_t> max_output_tokens;
    std::optional<double> temperature;
    std::optional<double> top_p;
  };

  explicit ResponseFormat(Request request);

  std::string StreamStart() override;
  std::string StreamChunk(const TurnChunk& chunk) override;
  std::string StreamEnd(const std::string& text,
                        const TurnChunk& last) override;
  std::string StreamError(const absl::Status& status) override;
  nlohmann::json Whole(const std::string& text,
                       const TurnChunk& last) const override;

 private:
  // The response object; `output` and `usage` filled when the turn is over.
  nlohmann::json Object(const char* status) const;
  nlohmann::json Message(const std::string& text, const char* status) const;
  // An SSE event of `type` with the next sequence number.
  std::string Event(const char* type, nlohmann::json body);

  const Request request_;
  const std::string message_id_;
  const int64_t created_at_;
  int64_t sequence_ = 0;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_RESPONSE_FORMAT_H_
