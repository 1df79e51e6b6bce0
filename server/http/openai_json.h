// Small pieces of OpenAI's wire format shared by the HTTP front's endpoints:
// Server-Sent Event framing, finish reasons, usage objects, JSON text that
// stays valid UTF-8. Thread-safe (pure functions).
#ifndef RWKV_SERVER_HTTP_OPENAI_JSON_H_
#define RWKV_SERVER_HTTP_OPENAI_JSON_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "server/sched/job.h"

namespace rwkv::server {

// Compact JSON text; invalid UTF-8 in strings becomes U+FFFD.
std::string Dump(const nlohmann::json& value);
// "data: <json>\n\n".
std::string SseData(const nlohmann::json& value);
// "event: <name>\ndata: <json>\n\n".
std::string SseEvent(absl::string_view name, const nlohmann::json& value);
// The stream terminator of the chat and text completion APIs.
inline constexpr char kSseDone[] = "data: [DONE]\n\n";

// "stop" (also for the end-of-text token), "length", or null.
nlohmann::json FinishReasonJson(FinishReason reason);
// Chat/text completions usage: prompt_tokens, completion_tokens,
// total_tokens, prompt_tokens_details.cached_tokens,
// completion_tokens_details.reasoning_tokens.
nlohmann::json CompletionUsage(const TurnChunk& last);
// Responses API usage: input_tokens (+ details.cached_tokens),
// output_tokens (+ details.reasoning_tokens), total_tokens.
nlohmann::json ResponseUsage(const TurnChunk& last);
// Seconds since the Unix epoch, now.
int64_t UnixNow();

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_OPENAI_JSON_H_
