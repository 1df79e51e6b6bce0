#include "server/http/openai_json.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace rwkv::server {

std::string Dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string SseData(const nlohmann::json& value) {
  return absl::StrCat("data: ", Dump(value), "\n\n");
}

std::string SseEvent(absl::string_view name, const nlohmann::json& value) {
  return absl::StrCat("event: ", name, "\ndata: ", Dump(value), "\n\n");
}

nlohmann::json FinishReasonJson(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
    case FinishReason::kEos:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kNone:
      break;
  }
  return nullptr;
}

nlohmann::json CompletionUsage(const TurnChunk& last) {
  return {{"prompt_tokens", last.prompt_tokens},
          {"completion_tokens", last.generated_tokens},
          {"total_tokens", last.prompt_tokens + last.generated_tokens},
          {"prompt_tokens_details", {{"cached_tokens", last.cached_tokens}}},
          {"completion_tokens_details", {{"reasoning_tokens", 0}}}};
}

nlohmann::json ResponseUsage(const TurnChunk& last) {
  return {{"input_tokens", last.prompt_tokens},
          {"input_tokens_details", {{"cached_tokens", last.cached_tokens}}},
          {"output_tokens", last.generated_tokens},
          {"output_tokens_details", {{"reasoning_tokens", 0}}},
          {"total_tokens", last.prompt_tokens + last.generated_tokens}};
}

int64_t UnixNow() { return absl::ToUnixSeconds(absl::Now()); }

}  // namespace rwkv::server
