// Reading OpenAI-style request bodies into the application layer's types,
// shared by the chat completions, completions and Responses endpoints:
// sampling fields, token limits, stop strings, message lists, and the
// parameters this server refuses (a clear 400 saying which and why, rather
// than silently ignoring what the client asked for). Every error is
// INVALID_ARGUMENT naming the field (json_fields.h). Thread-safe.
#ifndef RWKV_SERVER_HTTP_OPENAI_REQUEST_H_
#define RWKV_SERVER_HTTP_OPENAI_REQUEST_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/app/app_types.h"
#include "server/http/json_fields.h"

namespace rwkv::server {

// A parameter the server does not support, and when a value of it asks for
// what is unsupported (e.g. n > 1, a non-empty tools list).
struct Unsupported {
  const char* name;
  // True if this value of the member cannot be served.
  bool (*refuses)(const nlohmann::json& value);
  const char* why;
};

// The checks of every parameter in `list` that the body has.
absl::Status RejectUnsupported(const JsonFields& body,
                               const std::vector<Unsupported>& list);

// temperature, top_p, presence_penalty, frequency_penalty, seed and the
// extension top_k into `sampling`.
absl::Status ReadSampling(const JsonFields& body, SamplingRequest& sampling);

// The first of `names` present, as max_tokens in [1, limit]; 0 if none is.
absl::StatusOr<int32_t> ReadMaxTokens(const JsonFields& body,
                                      const std::vector<const char*>& names,
                                      int32_t limit);

// "stop": a string or an array of strings.
absl::StatusOr<std::vector<std::string>> ReadStop(const JsonFields& body);

// A message's content: a string, or an array of text parts ({"type":
// "text"|"input_text"|"output_text", "text": ...}) joined. `path` names it.
absl::StatusOr<std::string> ReadContent(const nlohmann::json& content,
                                        const std::string& path);

// A message list ("messages" of chat completions, an "input" array of the
// Responses API): objects with "role" (system, developer = system, user,
// assistant) and "content". `path` names the list.
absl::StatusOr<std::vector<ChatMessage>> ReadMessages(
    const nlohmann::json& list, const std::string& path);

// The request body as a JSON object's fields (INVALID_ARGUMENT otherwise).
absl::Status CheckObject(const nlohmann::json& body);

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_OPENAI_REQUEST_H_
