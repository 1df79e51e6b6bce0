#include "server/http/responses_handler.h"

#include <limits>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "server/http/http_reply.h"
#include "server/http/openai_json.h"
#include "server/http/openai_request.h"
#include "server/http/turn_responder.h"
#include "server/quote.h"
#include "server/session/random_id.h"

namespace rwkv::server {

using json = nlohmann::json;

namespace {

bool Always(const json&) { return true; }
bool NonEmpty(const json& v) { return !v.empty(); }
bool IsTrue(const json& v) { return !v.is_boolean() || v.get<bool>(); }
bool NotNoneOrAuto(const json& v) {
  return !(v.is_string() && (v == "none" || v == "auto"));
}
bool NotTextFormat(const json& v) {
  if (!v.is_object()) return true;
  const auto it = v.find("format");
  return it != v.end() && !(it->is_object() && it->value("type", "") == "text");
}

const std::vector<Unsupported>& ResponsesUnsupported() {
  static const auto* list = new std::vector<Unsupported>{
      {"tools", NonEmpty, "this server has no tool calling"},
      {"tool_choice", NotNoneOrAuto, "this server has no tool calling"},
      {"text", NotTextFormat, "only plain text replies"},
      {"include", NonEmpty, "no extra output data"},
      {"background", IsTrue, "responses run in the foreground"},
      {"conversation", Always, "use previous_response_id"},
      {"prompt", Always, "no stored prompt templates"},
  };
  return *list;
}

}  // namespace

absl::StatusOr<std::vector<ChatMessage>> ResponsesHandler::ReadInput(
    const JsonFields& body, const std::optional<std::string>& instructions) {
  std::vector<ChatMessage> messages;
  if (instructions.has_value()) {
    messages.push_back(
        {ChatMessage::Role::kSystem, *instructions, "instructions"});
  }
  const json* input = body.Find("input");
  if (input == nullptr) return FieldError("input", "is missing");
  if (input->is_string()) {
    messages.push_back(
        {ChatMessage::Role::kUser, input->get<std::string>(), "input"});
    return messages;
  }
  if (input->is_array()) {
    for (size_t i = 0; i < input->size(); ++i) {
      const json& item = (*input)[i];
      if (item.is_object() && item.value("type", "message") != "message") {
        return FieldError(absl::StrCat("input[", i, "].type"),
                          absl::StrCat(Quote(item.value("type", "")),
                                       " is not supported: only messages"));
      }
    }
  }
  absl::StatusOr<std::vector<ChatMessage>> list = ReadMessages(*input, "input");
  if (!list.ok()) return list.status();
  messages.insert(messages.end(), list->begin(), list->end());
  return messages;
}

absl::StatusOr<ResponsesHandler::Parsed> ResponsesHandler::Parse(
    const Caller& caller, const JsonFields& body) const {
  if (absl::Status s = RejectUnsupported(body, ResponsesUnsupported());
      !s.ok()) {
    return s;
  }
  Parsed p;
  absl::StatusOr<std::optional<std::string>> model = body.String("model");
  if (!model.ok()) return model.status();
  absl::StatusOr<std::optional<std::string>> instructions =
      body.String("instructions");
  if (!instructions.ok()) return instructions.status();
  absl::StatusOr<std::optional<std::string>> previous =
      body.String("previous_response_id");
  if (!previous.ok()) return previous.status();
  absl::StatusOr<std::optional<bool>> store = body.Bool("store");
  if (!store.ok()) return store.status();
  absl::StatusOr<std::optional<bool>> stream = body.Bool("stream");
  if (!stream.ok()) return stream.status();
  absl::StatusOr<std::vector<ChatMessage>> messages =
      ReadInput(body, *instructions);
  if (!messages.ok()) return messages.status();
  TurnRequest& turn = p.request.turn;
  if (absl::Status s = ReadSampling(body, turn.sampling); !s.ok()) return s;
  absl::StatusOr<int32_t> max_tokens = ReadMaxTokens(
      body, {"max_output_tokens"}, ctx_->app->options().max_tokens_limit);
  if (!max_tokens.ok()) return max_tokens.status();
  turn.chat = true;
  turn.messages = *std::move(messages);
  turn.max_tokens = *max_tokens;
  turn.front = Front::kHttp;
  if (previous->has_value()) {
    absl::StatusOr<SessionInfo> prev = FindResponse(caller, **previous);
    if (!prev.ok()) return prev.status();
    turn.session_id = **previous;
  }
  p.stream = stream->value_or(false);
  p.echo.id = RandomId("resp_");
  p.echo.model = ctx_->model;
  p.echo.instructions = *instructions;
  p.echo.previous_response_id = *previous;
  p.echo.store = store->value_or(true);
  if (*max_tokens > 0) p.echo.max_output_tokens = *max_tokens;
  if (turn.sampling.temperature)
    p.echo.temperature = *turn.sampling.temperature;
  if (turn.sampling.top_p) p.echo.top_p = *turn.sampling.top_p;
  return p;
}

void ResponsesHandler::Create(const Caller& caller, const httplib::Request& req,
                              httplib::Response& res) const {
  absl::StatusOr<json> body = ctx_->json->Parse(req.body);
  if (!body.ok()) return SendError(res, body.status());
  if (absl::Status s = CheckObject(*body); !s.ok()) return SendError(res, s);
  absl::StatusOr<Parsed> parsed = Parse(caller, JsonFields(*body, ""));
  if (!parsed.ok()) return SendError(res, parsed.status());
  auto format = std::make_shared<ResponseFormat>(parsed->echo);
  if (parsed->echo.store) {
    parsed->request.keep_as =
        KeepAs{parsed->echo.id, 0,
               [format](const std::string& reply, const TurnChunk& last) {
                 return Dump(format->Whole(reply, last));
               }};
  }
  ChatApp* app = ctx_->app;
  AnswerWithTurn(req, res, *ctx_->turns, format, parsed->stream,
                 [&](std::shared_ptr<TurnStream> stream) {
                   app->StartDetachedTurn(caller, std::move(parsed->request),
                                          std::move(stream));
                 });
}

absl::StatusOr<SessionInfo> ResponsesHandler::FindResponse(
    const Caller& caller, const std::string& id) const {
  absl::StatusOr<SessionInfo> info = ctx_->app->GetSession(caller, id);
  if (info.ok() && !info->note.empty()) return info;
  if (!info.ok() && !absl::IsNotFound(info.status())) return info.status();
  return absl::NotFoundError(absl::StrCat(
      "response ", Quote(id), " not found",
      info.ok() ? "" : absl::StrCat(" (", info.status().message(), ")")));
}

void ResponsesHandler::Get(const Caller& caller, const httplib::Request& req,
                           httplib::Response& res) const {
  absl::StatusOr<SessionInfo> info = FindResponse(caller, req.matches[1]);
  if (!info.ok()) return SendError(res, info.status());
  res.status = 200;
  res.set_content(info->note, "application/json");
}

void ResponsesHandler::Delete(const Caller& caller, const httplib::Request& req,
                              httplib::Response& res) const {
  const std::string id = req.matches[1];
  absl::StatusOr<SessionInfo> info = FindResponse(caller, id);
  if (!info.ok()) return SendError(res, info.status());
  absl::Notification done;
  absl::Status deleted;
  ctx_->app->DeleteSession(caller, id, [&](absl::Status s) {
    deleted = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();
  if (!deleted.ok()) return SendError(res, deleted);
  SendJson(res, {{"id", id}, {"object", "response"}, {"deleted", true}});
}

}  // namespace rwkv::server
