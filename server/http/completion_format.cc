#include "server/http/completion_format.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/http/http_errors.h"
#include "server/http/openai_json.h"
#include "server/session/random_id.h"

namespace rwkv::server {

using json = nlohmann::json;

CompletionFormat::CompletionFormat(Kind kind, std::string model,
                                   bool include_usage, bool return_token_ids)
    : kind_(kind),
      model_(std::move(model)),
      include_usage_(include_usage),
      return_token_ids_(return_token_ids),
      id_(RandomId(kind == Kind::kChat ? "chatcmpl-" : "cmpl-")),
      created_(UnixNow()) {}

json CompletionFormat::Chunk(json choice) const {
  json chunk = {{"id", id_},
                {"object", kind_ == Kind::kChat ? "chat.completion.chunk"
                                                : "text_completion"},
                {"created", created_},
                {"model", model_},
                {"system_fingerprint", nullptr},
                {"choices", json::array()}};
  if (!choice.is_null()) chunk["choices"].push_back(std::move(choice));
  if (include_usage_) chunk["usage"] = nullptr;
  return chunk;
}

json CompletionFormat::StreamChoice(absl::string_view text,
                                    json finish_reason) const {
  json choice = {{"index", 0},
                 {"logprobs", nullptr},
                 {"finish_reason", std::move(finish_reason)}};
  if (kind_ == Kind::kChat) {
    choice["delta"] = json::object();
    if (!text.empty()) choice["delta"]["content"] = std::string(text);
  } else {
    choice["text"] = std::string(text);
  }
  return choice;
}

std::string CompletionFormat::StreamStart() {
  if (kind_ == Kind::kText) return "";
  json choice = StreamChoice("", nullptr);
  choice["delta"] = {{"role", "assistant"}, {"content", ""}};
  return SseData(Chunk(std::move(choice)));
}

std::string CompletionFormat::StreamChunk(const TurnChunk& chunk) {
  if (chunk.text.empty() && !(return_token_ids_ && !chunk.token_ids.empty())) {
    return "";
  }
  json choice = StreamChoice(chunk.text, nullptr);
  if (return_token_ids_) choice["token_ids"] = chunk.token_ids;
  return SseData(Chunk(std::move(choice)));
}

std::string CompletionFormat::StreamEnd(const std::string& /*text*/,
                                        const TurnChunk& last) {
  std::string out =
      SseData(Chunk(StreamChoice("", FinishReasonJson(last.finish_reason))));
  if (include_usage_) {
    json usage_chunk = Chunk(nullptr);
    usage_chunk["usage"] = CompletionUsage(last);
    out += SseData(usage_chunk);
  }
  return out + kSseDone;
}

std::string CompletionFormat::StreamError(const absl::Status& status) {
  return SseData(json{{"error", ErrorObject(status)}}) + kSseDone;
}

json CompletionFormat::Whole(const std::string& text,
                             const TurnChunk& last) const {
  json choice = {{"index", 0},
                 {"logprobs", nullptr},
                 {"finish_reason", FinishReasonJson(last.finish_reason)}};
  if (kind_ == Kind::kChat) {
    choice["message"] = {
        {"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
  } else {
    choice["text"] = text;
  }
  return {
      {"id", id_},
      {"object", kind_ == Kind::kChat ? "chat.completion" : "text_completion"},
      {"created", created_},
      {"model", model_},
      {"system_fingerprint", nullptr},
      {"choices", json::array({std::move(choice)})},
      {"usage", CompletionUsage(last)}};
}

}  // namespace rwkv::server
