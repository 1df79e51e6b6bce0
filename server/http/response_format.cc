#include "server/http/response_format.h"

#include <utility>

#include "server/http/http_errors.h"
#include "server/http/openai_json.h"
#include "server/session/random_id.h"

namespace rwkv::server {

using json = nlohmann::json;

namespace {

template <typename T>
json OrNull(const std::optional<T>& v) {
  return v.has_value() ? json(*v) : json(nullptr);
}

json TextPart(const std::string& text) {
  return {{"type", "output_text"},
          {"text", text},
          {"annotations", json::array()},
          {"logprobs", json::array()}};
}

}  // namespace

ResponseFormat::ResponseFormat(Request request)
    : request_(std::move(request)),
      message_id_(RandomId("msg_")),
      created_at_(UnixNow()) {}

json ResponseFormat::Object(const char* status) const {
  return {{"id", request_.id},
          {"object", "response"},
          {"created_at", created_at_},
          {"status", status},
          {"error", nullptr},
          {"incomplete_details", nullptr},
          {"instructions", OrNull(request_.instructions)},
          {"max_output_tokens", OrNull(request_.max_output_tokens)},
          {"model", request_.model},
          {"output", json::array()},
          {"parallel_tool_calls", false},
          {"previous_response_id", OrNull(request_.previous_response_id)},
          {"reasoning", {{"effort", nullptr}, {"summary", nullptr}}},
          {"store", request_.store},
          {"temperature", OrNull(request_.temperature)},
          {"text", {{"format", {{"type", "text"}}}}},
          {"tool_choice", "none"},
          {"tools", json::array()},
          {"top_p", OrNull(request_.top_p)},
          {"truncation", "disabled"},
          {"usage", nullptr},
          {"user", nullptr},
          {"metadata", json::object()}};
}

json ResponseFormat::Message(const std::string& text,
                             const char* status) const {
  json content = json::array();
  if (std::string(status) == "completed") content.push_back(TextPart(text));
  return {{"type", "message"},
          {"id", message_id_},
          {"status", status},
          {"role", "assistant"},
          {"content", std::move(content)}};
}

std::string ResponseFormat::Event(const char* type, json body) {
  body["type"] = type;
  body["sequence_number"] = sequence_++;
  return SseEvent(type, body);
}

std::string ResponseFormat::StreamStart() {
  std::string out =
      Event("response.created", {{"response", Object("in_progress")}});
  out += Event("response.in_progress", {{"response", Object("in_progress")}});
  out += Event("response.output_item.added",
               {{"output_index", 0}, {"item", Message("", "in_progress")}});
  out += Event("response.content_part.added", {{"item_id", message_id_},
                                               {"output_index", 0},
                                               {"content_index", 0},
                                               {"part", TextPart("")}});
  return out;
}

std::string ResponseFormat::StreamChunk(const TurnChunk& chunk) {
  if (chunk.text.empty()) return "";
  const std::string& text = chunk.text;
  return Event("response.output_text.delta", {{"item_id", message_id_},
                                              {"output_index", 0},
                                              {"content_index", 0},
                                              {"delta", text},
                                              {"logprobs", json::array()}});
}

std::string ResponseFormat::StreamEnd(const std::string& text,
                                      const TurnChunk& last) {
  std::string out =
      Event("response.output_text.done", {{"item_id", message_id_},
                                          {"output_index", 0},
                                          {"content_index", 0},
                                          {"text", text},
                                          {"logprobs", json::array()}});
  out += Event("response.content_part.done", {{"item_id", message_id_},
                                              {"output_index", 0},
                                              {"content_index", 0},
                                              {"part", TextPart(text)}});
  out += Event("response.output_item.done",
               {{"output_index", 0}, {"item", Message(text, "completed")}});
  json whole = Whole(text, last);
  const bool complete = whole["status"] == "completed";
  out += Event(complete ? "response.completed" : "response.incomplete",
               {{"response", std::move(whole)}});
  return out;
}

std::string ResponseFormat::StreamError(const absl::Status& status) {
  json e = ErrorObject(status);
  return Event(
      "error",
      {{"code", e["code"]}, {"message", e["message"]}, {"param", e["param"]}});
}

json ResponseFormat::Whole(const std::string& text,
                           const TurnChunk& last) const {
  const bool cut = last.finish_reason == FinishReason::kLength;
  json r = Object(cut ? "incomplete" : "completed");
  if (cut) r["incomplete_details"] = {{"reason", "max_output_tokens"}};
  r["output"].push_back(Message(text, "completed"));
  r["usage"] = ResponseUsage(last);
  return r;
}

}  // namespace rwkv::server
