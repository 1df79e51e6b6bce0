// ReplyFormat: how one OpenAI-style endpoint presents a turn's reply, as a
// stream of Server-Sent Events or as one JSON body. TurnResponder drives it;
// one instance per request (the Stream* methods keep per-stream state such
// as sequence numbers). Whole() is const and thread-safe: the Responses API
// also calls it on the scheduler thread to store the response.
#ifndef RWKV_SERVER_HTTP_REPLY_FORMAT_H_
#define RWKV_SERVER_HTTP_REPLY_FORMAT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "server/sched/job.h"

namespace rwkv::server {

class ReplyFormat {
 public:
  virtual ~ReplyFormat() = default;
  // SSE text sent before anything of the reply.
  virtual std::string StreamStart() = 0;
  // SSE text for a chunk of the reply ("" if there is nothing to send,
  // e.g. tokens without text).
  virtual std::string StreamChunk(const TurnChunk& chunk) = 0;
  // SSE text that ends a completed reply: `text` is all of it, `last` holds
  // the finish reason and usage.
  virtual std::string StreamEnd(const std::string& text,
                                const TurnChunk& last) = 0;
  // SSE text that ends a stream the turn's failure cut short.
  virtual std::string StreamError(const absl::Status& status) = 0;
  // The body of a non-streaming answer.
  virtual nlohmann::json Whole(const std::string& text,
                               const TurnChunk& last) const = 0;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_REPLY_FORMAT_H_
