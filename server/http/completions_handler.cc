#include "server/http/completions_handler.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/http/completion_format.h"
#include "server/http/http_reply.h"
#include "server/http/openai_request.h"
#include "server/http/turn_responder.h"

namespace rwkv::server {

using json = nlohmann::json;

namespace {

bool Always(const json&) { return true; }
bool NotOne(const json& v) { return !(v.is_number() && v.get<double>() == 1); }
bool NonEmpty(const json& v) { return !v.empty(); }
bool IsTrue(const json& v) { return !v.is_boolean() || v.get<bool>(); }
bool NotNone(const json& v) { return !(v.is_string() && v == "none"); }
bool NotTextFormat(const json& v) {
  return !(v.is_object() && v.value("type", "") == "text");
}
bool NotTextOnly(const json& v) { return v != json::array({"text"}); }
bool NonZero(const json& v) {
  return !(v.is_number() && v.get<double>() == 0) && !v.is_boolean();
}

const std::vector<Unsupported>& ChatUnsupported() {
  static const auto* list = new std::vector<Unsupported>{
      {"n", NotOne, "one choice per request (n = 1)"},
      {"tools", NonEmpty, "this server has no tool calling"},
      {"tool_choice", NotNone, "this server has no tool calling"},
      {"functions", NonEmpty, "this server has no tool calling"},
      {"function_call", NotNone, "this server has no tool calling"},
      {"logprobs", IsTrue, "log probabilities are not returned"},
      {"top_logprobs", NonZero, "log probabilities are not returned"},
      {"logit_bias", NonEmpty, "logit biases are not applied"},
      {"response_format", NotTextFormat, "only plain text replies"},
      {"modalities", NotTextOnly, "only text"},
      {"audio", Always, "only text"},
      {"prediction", Always, "predicted outputs are not used"},
  };
  return *list;
}

const std::vector<Unsupported>& TextUnsupported() {
  static const auto* list = new std::vector<Unsupported>{
      {"n", NotOne, "one choice per request (n = 1)"},
      {"best_of", NotOne, "one candidate per request (best_of = 1)"},
      {"echo", IsTrue, "the prompt is not echoed"},
      {"logprobs", NonZero, "log probabilities are not returned"},
      {"logit_bias", NonEmpty, "logit biases are not applied"},
      {"suffix", NonEmpty, "no insertion after a suffix"},
  };
  return *list;
}

// The completions prompt: a string, or an array holding one string.
absl::StatusOr<std::string> ReadPrompt(const JsonFields& body) {
  const json* prompt = body.Find("prompt");
  if (prompt == nullptr) return FieldError("prompt", "is missing");
  if (prompt->is_string()) return prompt->get<std::string>();
  if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    return (*prompt)[0].get<std::string>();
  }
  return FieldError(
      "prompt", absl::StrCat("must be a string (or an array of "
                             "one string), got ",
                             prompt->is_array() ? "an array of another shape"
                                                : JsonTypeName(*prompt)));
}

}  // namespace

absl::StatusOr<CompletionsHandler::Common> CompletionsHandler::ReadCommon(
    const JsonFields& body, int32_t max_tokens_limit) {
  Common c;
  absl::StatusOr<std::optional<std::string>> model = body.String("model");
  if (!model.ok()) return model.status();
  absl::StatusOr<std::optional<bool>> stream = body.Bool("stream");
  if (!stream.ok()) return stream.status();
  c.stream = stream->value_or(false);
  absl::StatusOr<std::optional<JsonFields>> options =
      body.Object("stream_options");
  if (!options.ok()) return options.status();
  if (options->has_value()) {
    absl::StatusOr<std::optional<bool>> usage =
        (*options)->Bool("include_usage");
    if (!usage.ok()) return usage.status();
    c.include_usage = usage->value_or(false);
  }
  // Extensions (as vLLM has them): every token's id in the stream, and
  // generation that runs to max_tokens past the end-of-text token.
  absl::StatusOr<std::optional<bool>> ids = body.Bool("return_token_ids");
  if (!ids.ok()) return ids.status();
  c.return_token_ids = ids->value_or(false);
  absl::StatusOr<std::optional<bool>> ignore_eos = body.Bool("ignore_eos");
  if (!ignore_eos.ok()) return ignore_eos.status();
  c.turn.ignore_eos = ignore_eos->value_or(false);
  if (absl::Status s = ReadSampling(body, c.turn.sampling); !s.ok()) return s;
  absl::StatusOr<int32_t> max_tokens = ReadMaxTokens(
      body, {"max_completion_tokens", "max_tokens"}, max_tokens_limit);
  if (!max_tokens.ok()) return max_tokens.status();
  c.turn.max_tokens = *max_tokens;
  absl::StatusOr<std::vector<std::string>> stop = ReadStop(body);
  if (!stop.ok()) return stop.status();
  c.turn.stop = *std::move(stop);
  c.turn.front = Front::kHttp;
  return c;
}

void CompletionsHandler::Chat(const Caller& caller, const httplib::Request& req,
                              httplib::Response& res) const {
  absl::StatusOr<json> body = ctx_->json->Parse(req.body);
  if (!body.ok()) return SendError(res, body.status());
  if (absl::Status s = CheckObject(*body); !s.ok()) return SendError(res, s);
  const JsonFields fields(*body, "");
  if (absl::Status s = RejectUnsupported(fields, ChatUnsupported()); !s.ok()) {
    return SendError(res, s);
  }
  const json* messages = fields.Find("messages");
  if (messages == nullptr) {
    return SendError(res, FieldError("messages", "is missing"));
  }
  absl::StatusOr<std::vector<ChatMessage>> list =
      ReadMessages(*messages, "messages");
  if (!list.ok()) return SendError(res, list.status());
  absl::StatusOr<Common> common =
      ReadCommon(fields, ctx_->app->options().max_tokens_limit);
  if (!common.ok()) return SendError(res, common.status());
  common->turn.chat = true;
  common->turn.messages = *std::move(list);
  Run(caller, req, res, *std::move(common), /*chat=*/true);
}

void CompletionsHandler::Text(const Caller& caller, const httplib::Request& req,
                              httplib::Response& res) const {
  absl::StatusOr<json> body = ctx_->json->Parse(req.body);
  if (!body.ok()) return SendError(res, body.status());
  if (absl::Status s = CheckObject(*body); !s.ok()) return SendError(res, s);
  const JsonFields fields(*body, "");
  if (absl::Status s = RejectUnsupported(fields, TextUnsupported()); !s.ok()) {
    return SendError(res, s);
  }
  absl::StatusOr<std::string> prompt = ReadPrompt(fields);
  if (!prompt.ok()) return SendError(res, prompt.status());
  absl::StatusOr<Common> common =
      ReadCommon(fields, ctx_->app->options().max_tokens_limit);
  if (!common.ok()) return SendError(res, common.status());
  common->turn.text = *std::move(prompt);
  common->turn.text_field = "prompt";
  Run(caller, req, res, *std::move(common), /*chat=*/false);
}

void CompletionsHandler::Run(const Caller& caller, const httplib::Request& req,
                             httplib::Response& res, Common common,
                             bool chat) const {
  auto format = std::make_shared<CompletionFormat>(
      chat ? CompletionFormat::Kind::kChat : CompletionFormat::Kind::kText,
      ctx_->model, common.include_usage, common.return_token_ids);
  const std::string session = req.get_header_value("X-Session-Id");
  if (!session.empty()) res.set_header("X-Session-Id", session);
  ChatApp* app = ctx_->app;
  AnswerWithTurn(
      req, res, *ctx_->turns, std::move(format), common.stream,
      [&](std::shared_ptr<TurnStream> stream) {
        if (!session.empty()) {
          common.turn.session_id = session;
          app->StartTurn(caller, std::move(common.turn), std::move(stream));
          return;
        }
        DetachedTurnRequest detached;
        detached.turn = std::move(common.turn);
        app->StartDetachedTurn(caller, std::move(detached), std::move(stream));
      });
}

}  // namespace rwkv::server
