#include "client/http_load_target.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace rwkv::client {

using json = nlohmann::json;

namespace {

// The sum of a metric's samples in Prometheus text ("name value" and
// "name{labels} value" lines); -1 if there are none.
int64_t MetricSum(const std::string& text, absl::string_view name) {
  double sum = 0;
  bool found = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, name) || line.size() <= name.size()) continue;
    const char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    const size_t space = line.rfind(' ');
    double v = 0;
    if (absl::SimpleAtod(line.substr(space + 1), &v)) {
      sum += v;
      found = true;
    }
  }
  return found ? static_cast<int64_t>(sum) : -1;
}

// Reads a stream of Server-Sent Events piece by piece and hands each data
// payload (parsed) to `on_data` (false: stop).
class SseParser {
 public:
  explicit SseParser(std::function<bool(const json&)> on_data)
      : on_data_(std::move(on_data)) {}
  bool Feed(const char* data, size_t n) {
    buffer_.append(data, n);
    size_t end;
    while ((end = buffer_.find("\n\n")) != std::string::npos) {
      const std::string event = buffer_.substr(0, end);
      buffer_.erase(0, end + 2);
      for (absl::string_view line : absl::StrSplit(event, '\n')) {
        if (!absl::StartsWith(line, "data: ") || line == "data: [DONE]") {
          continue;
        }
        json value = json::parse(line.substr(6), nullptr, false);
        if (value.is_discarded()) continue;
        if (!on_data_(value)) return false;
      }
    }
    return true;
  }

 private:
  std::function<bool(const json&)> on_data_;
  std::string buffer_;
};

}  // namespace

absl::Status HttpStatus(const httplib::Result& result, absl::string_view what) {
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat(what, ": ", httplib::to_string(result.error())));
  }
  if (result->status >= 200 && result->status < 300) return absl::OkStatus();
  json body = json::parse(result->body, nullptr, false);
  std::string message = result->body.substr(0, 300);
  if (!body.is_discarded() && body.contains("error")) {
    message = body["error"].value("message", message);
  }
  return absl::UnknownError(
      absl::StrCat(what, ": HTTP ", result->status, ": ", message));
}

absl::StatusOr<std::unique_ptr<HttpLoadTarget>> HttpLoadTarget::Create(
    const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port <= 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("HTTP server must be HOST:PORT, got '", address, "'"));
  }
  return std::unique_ptr<HttpLoadTarget>(
      new HttpLoadTarget(address, address.substr(0, colon), port));
}

std::unique_ptr<httplib::Client> HttpLoadTarget::Connect() const {
  auto client = std::make_unique<httplib::Client>(host_, port_);
  client->set_read_timeout(600, 0);
  client->set_tcp_nodelay(true);
  return client;
}

absl::StatusOr<TargetInfo> HttpLoadTarget::Info() {
  std::unique_ptr<httplib::Client> c = Connect();
  httplib::Result models = c->Get("/v1/models");
  if (absl::Status s = HttpStatus(models, "GET /v1/models"); !s.ok()) return s;
  json body = json::parse(models->body, nullptr, false);
  TargetInfo info;
  if (!body.is_discarded() && !body["data"].empty()) {
    info.tokenizer = body["data"][0].value("tokenizer", "");
  }
  httplib::Result metrics = c->Get("/metrics");
  if (absl::Status s = HttpStatus(metrics, "GET /metrics"); !s.ok()) return s;
  // As GetModelInfo counts them: batched steps and the tokens generated.
  info.decode_steps = MetricSum(metrics->body, "rwkv_decode_steps_total");
  info.tokens_generated =
      MetricSum(metrics->body, "rwkv_generation_tokens_total");
  return info;
}

absl::Status HttpLoadTarget::CreateSession(const std::string& id) {
  const json body = {{"session_id", id}, {"ttl_seconds", 3600}};
  return HttpStatus(
      Connect()->Post("/v1/sessions", body.dump(), "application/json"),
      "POST /v1/sessions");
}

absl::Status HttpLoadTarget::DeleteSession(const std::string& id) {
  return HttpStatus(Connect()->Delete(("/v1/sessions/" + id).c_str()),
                    "DELETE /v1/sessions");
}

absl::StatusOr<int> HttpLoadTarget::Generate(const LoadTurn& turn,
                                             const OnTokens& on_tokens) {
  const json body = {{"prompt", turn.text},
                     {"max_tokens", turn.max_tokens},
                     {"temperature", turn.temperature},
                     {"seed", turn.seed},
                     {"stream", true},
                     {"stream_options", {{"include_usage", true}}},
                     {"ignore_eos", true},
                     {"return_token_ids", true}};
  int prompt_tokens = 0;
  bool stopped = false;
  absl::Status stream_error;
  SseParser parser([&](const json& event) {
    if (event.contains("error")) {
      stream_error = absl::UnknownError(event["error"].value("message", ""));
      return false;
    }
    if (event.contains("usage") && event["usage"].is_object()) {
      prompt_tokens = event["usage"].value("prompt_tokens", 0);
    }
    const json& choices = event["choices"];
    if (choices.empty() || !choices[0].contains("token_ids")) return true;
    const int n = static_cast<int>(choices[0]["token_ids"].size());
    if (n > 0 && !on_tokens(n)) {
      stopped = true;
      return false;
    }
    return true;
  });
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.set_header("X-Session-Id", turn.session_id);
  std::string head;  // the start of the body, for an error's message
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (head.size() < 4096) head.append(data, std::min<size_t>(n, 4096));
    return parser.Feed(data, n);
  };
  httplib::Result result = Connect()->send(req);
  if (stopped) return absl::CancelledError("stopped by the client");
  if (!stream_error.ok()) return stream_error;
  if (result && result->body.empty()) result->body = head;
  if (absl::Status s = HttpStatus(result, "POST /v1/completions"); !s.ok()) {
    return s;
  }
  return prompt_tokens;
}

}  // namespace rwkv::client
