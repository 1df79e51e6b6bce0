#include "client/resend_benchmark.h"

#include <chrono>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace rwkv::client {

using json = nlohmann::json;

namespace {

// A system line with a random tag; every tag has the same length.
std::string TaggedSystemLine(std::mt19937_64& rng) {
  return absl::StrFormat("Conversation %016x.", rng());
}

// The user's messages, varied and of different lengths.
std::string Question(int turn) {
  static const char* const kQuestions[] = {
      "My name is Alice.",
      "What is the capital of France?",
      "What is the capital of Italy?",
      "How are you today?",
      "What is the capital of Spain?",
      "Tell me something about yourself, please.",
      "What is the capital of Germany?",
      "Thank you!",
      "What is the capital of Japan?",
      "What is my name?",
  };
  return kQuestions[turn % (sizeof(kQuestions) / sizeof(kQuestions[0]))];
}

}  // namespace

absl::StatusOr<ResendBenchmark::Answer> ResendBenchmark::Complete(
    const json& messages, int max_tokens) {
  const json body = {{"messages", messages},
                     {"max_tokens", max_tokens},
                     {"temperature", 0},
                     {"stream", true},
                     {"stream_options", {{"include_usage", true}}},
                     {"return_token_ids", true}};
  Answer answer;
  std::string buffer, head;
  const auto sent = std::chrono::steady_clock::now();
  bool first = true;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (head.size() < 4096) head.append(data, n);
    buffer.append(data, n);
    size_t end;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      const std::string event = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (!absl::StartsWith(event, "data: {")) continue;
      json chunk = json::parse(event.substr(6), nullptr, false);
      if (chunk.is_discarded()) continue;
      if (chunk.contains("usage") && chunk["usage"].is_object()) {
        answer.prompt_tokens = chunk["usage"].value("prompt_tokens", 0);
        answer.cached_tokens =
            chunk["usage"]["prompt_tokens_details"].value("cached_tokens", 0);
      }
      if (chunk["choices"].empty()) continue;
      const json& choice = chunk["choices"][0];
      if (first && !choice.value("token_ids", json::array()).empty()) {
        first = false;
        answer.ttft_ms = std::chrono::duration<double, std::milli>(
                             std::chrono::steady_clock::now() - sent)
                             .count();
      }
      answer.text += choice["delta"].value("content", "");
    }
    return true;
  };
  httplib::Result result = target_->Connect()->send(req);
  if (result && result->body.empty()) result->body = head;
  if (absl::Status s = HttpStatus(result, "POST /v1/chat/completions");
      !s.ok()) {
    return s;
  }
  return answer;
}

absl::StatusOr<std::vector<ResendTurnResult>> ResendBenchmark::Run(int turns) {
  std::mt19937_64 rng(std::random_device{}());
  json history =
      json::array({{{"role", "system"}, {"content", TaggedSystemLine(rng)}}});
  std::vector<ResendTurnResult> out;
  for (int t = 0; t < turns; ++t) {
    const std::string question = Question(t);
    history.push_back({{"role", "user"}, {"content", question}});
    absl::StatusOr<Answer> warm = Complete(history, reply_tokens_);
    if (!warm.ok()) return warm.status();
    // The same history, from nothing.
    json cold_history = history;
    cold_history[0]["content"] = TaggedSystemLine(rng);
    absl::StatusOr<Answer> cold = Complete(cold_history, 1);
    if (!cold.ok()) return cold.status();
    ResendTurnResult r;
    r.turn = t + 1;
    r.prompt_tokens = warm->prompt_tokens;
    r.warm_cached_tokens = warm->cached_tokens;
    r.warm_computed_tokens = warm->prompt_tokens - warm->cached_tokens;
    r.warm_ttft_ms = warm->ttft_ms;
    r.cold_computed_tokens = cold->prompt_tokens - cold->cached_tokens;
    r.cold_ttft_ms = cold->ttft_ms;
    r.new_message_bytes = static_cast<int>(
        absl::StrCat("User: ", question, "\n\nAssistant:").size());
    out.push_back(r);
    history.push_back({{"role", "assistant"}, {"content", warm->text}});
  }
  return out;
}

}  // namespace rwkv::client
