// Reading OpenAI request bodies: message lists and content parts, sampling
// and limits, stop strings, refused parameters; each error names its field
// (also as the OpenAI error's param), and errors map to the documented HTTP
// codes and error objects.
#include "server/http/openai_request.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/http/http_errors.h"

namespace rwkv::server {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using Role = ChatMessage::Role;

TEST(OpenAiRequestTest, ReadsMessagesAndTextParts) {
  json list = json::parse(R"([
    {"role": "developer", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "Hi "},
                                 {"type": "input_text", "text": "there"}]},
    {"role": "assistant", "content": null},
    {"role": "user", "content": "Bye", "name": "bob"}])");
  absl::StatusOr<std::vector<ChatMessage>> m = ReadMessages(list, "messages");
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 4u);
  EXPECT_EQ((*m)[0].role, Role::kSystem);
  EXPECT_EQ((*m)[1].content, "Hi there");
  EXPECT_EQ((*m)[1].field, "messages[1].content");
  EXPECT_EQ((*m)[2].role, Role::kAssistant);
  EXPECT_EQ((*m)[2].content, "");
  EXPECT_EQ((*m)[3].content, "Bye");
}

TEST(OpenAiRequestTest, BadMessagesNameTheField) {
  auto error = [](const std::string& text) {
    absl::StatusOr<std::vector<ChatMessage>> m =
        ReadMessages(json::parse(text), "messages");
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(m.status().message()) + " | param " +
           ErrorField(m.status()).value_or("none");
  };
  EXPECT_THAT(error("[]"), HasSubstr("messages is empty | param messages"));
  EXPECT_THAT(error("{}"), HasSubstr("messages must be an array of messages, "
                                     "got an object"));
  EXPECT_THAT(error(R"([{"role": "user"}])"),
              HasSubstr("messages[0].content is missing"));
  EXPECT_THAT(error(R"([{"role": "user", "content": 5}])"),
              HasSubstr("messages[0].content must be a string or an array of "
                        "text parts, got a number"));
  EXPECT_THAT(error(R"([{"role": "wizard", "content": "x"}])"),
              HasSubstr("messages[0].role must be system, developer, user or "
                        "assistant"));
  EXPECT_THAT(error(R"([{"role": "tool", "content": "x"}])"),
              HasSubstr("no tool calling | param messages[0].role"));
  EXPECT_THAT(
      error(R"([{"role": "user", "content": [{"type": "image_url"}]}])"),
      HasSubstr("messages[0].content[0].type 'image_url' is not supported"));
}

TEST(OpenAiRequestTest, ReadsSamplingLimitsAndStops) {
  json body = json::parse(R"({"temperature": 0, "top_p": 0.5, "seed": 7,
      "presence_penalty": -1, "frequency_penalty": 1.5, "top_k": 4,
      "max_completion_tokens": 9, "max_tokens": 100, "stop": ["a", "b"]})");
  JsonFields f(body, "");
  SamplingRequest s;
  ASSERT_TRUE(ReadSampling(f, s).ok());
  EXPECT_EQ(*s.temperature, 0);
  EXPECT_EQ(*s.top_p, 0.5f);
  EXPECT_EQ(*s.seed, 7u);
  EXPECT_EQ(*s.presence_penalty, -1);
  EXPECT_EQ(*s.frequency_penalty, 1.5f);
  EXPECT_EQ(*s.top_k, 4);
  EXPECT_EQ(*ReadMaxTokens(f, {"max_completion_tokens", "max_tokens"}, 4096),
            9);
  EXPECT_EQ(*ReadStop(f), (std::vector<std::string>{"a", "b"}));
  json one = json::parse(R"({"stop": "x"})");
  EXPECT_EQ(*ReadStop(JsonFields(one, "")), std::vector<std::string>{"x"});
}

TEST(OpenAiRequestTest, BadValuesNameTheField) {
  auto sampling_error = [](const std::string& text) {
    json body = json::parse(text);
    SamplingRequest s;
    return std::string(ReadSampling(JsonFields(body, ""), s).message());
  };
  EXPECT_EQ(sampling_error(R"({"temperature": "hot"})"),
            "temperature must be a number, got a string");
  EXPECT_EQ(sampling_error(R"({"temperature": 3})"),
            "temperature must be in [0, 2], got 3");
  EXPECT_EQ(sampling_error(R"({"seed": 1.5})"),
            "seed must be an integer, got a number");
  EXPECT_EQ(sampling_error(R"({"seed": -1})"),
            "seed must be in [0, 9223372036854775807], got -1");
  json zero = json::parse(R"({"max_tokens": 0})");
  EXPECT_THAT(
      std::string(ReadMaxTokens(JsonFields(zero, ""), {"max_tokens"}, 4096)
                      .status()
                      .message()),
      HasSubstr("max_tokens must be in [1, 4096]"));
  json big = json::parse(R"({"max_output_tokens": 4097})");
  absl::Status over =
      ReadMaxTokens(JsonFields(big, ""), {"max_output_tokens"}, 4096).status();
  EXPECT_EQ(std::string(over.message()),
            "max_output_tokens must be at most 4096");
  EXPECT_EQ(ErrorField(over), "max_output_tokens");
  json stop = json::parse(R"({"stop": ["a", 1]})");
  EXPECT_EQ(std::string(ReadStop(JsonFields(stop, "")).status().message()),
            "stop[1] must be a string, got a number");
}

TEST(OpenAiRequestTest, UnsupportedParametersAreRefusedByName) {
  const std::vector<Unsupported> list = {
      {"n", [](const json& v) { return v != 1; }, "one choice per request"}};
  json one = json::parse(R"({"n": 1})");
  EXPECT_TRUE(RejectUnsupported(JsonFields(one, ""), list).ok());
  json two = json::parse(R"({"n": 2})");
  absl::Status s = RejectUnsupported(JsonFields(two, ""), list);
  EXPECT_EQ(s.message(), "n is not supported: one choice per request");
  EXPECT_EQ(ErrorField(s), "n");
}

TEST(HttpErrorsTest, CodesAndErrorObjects) {
  EXPECT_EQ(HttpStatusFor(absl::InvalidArgumentError("x")), 400);
  EXPECT_EQ(HttpStatusFor(absl::NotFoundError("x")), 404);
  EXPECT_EQ(HttpStatusFor(absl::FailedPreconditionError("x")), 409);
  EXPECT_EQ(HttpStatusFor(absl::AlreadyExistsError("x")), 409);
  EXPECT_EQ(HttpStatusFor(absl::AbortedError("x")), 409);
  EXPECT_EQ(HttpStatusFor(absl::ResourceExhaustedError("x")), 429);
  EXPECT_EQ(HttpStatusFor(absl::UnavailableError("x")), 503);
  EXPECT_EQ(HttpStatusFor(absl::CancelledError("x")), 499);
  EXPECT_EQ(HttpStatusFor(absl::DeadlineExceededError("x")), 504);
  EXPECT_EQ(HttpStatusFor(absl::UnauthenticatedError("x")), 401);
  EXPECT_EQ(HttpStatusFor(absl::InternalError("x")), 500);
  EXPECT_EQ(RetryAfterSeconds(absl::ResourceExhaustedError("x")), 1);
  EXPECT_EQ(RetryAfterSeconds(absl::NotFoundError("x")), 0);
  json e = json::parse(ErrorBody(absl::FailedPreconditionError("busy")));
  EXPECT_EQ(e, json::parse(R"({"error": {"message": "busy",
      "type": "conflict_error", "param": null,
      "code": "failed_precondition"}})"));
  // Long messages are cut; invalid UTF-8 in them does not break the JSON.
  json cut = json::parse(
      ErrorBody(absl::InvalidArgumentError(std::string(5000, 'x') + "\xff")));
  EXPECT_LT(cut["error"]["message"].get<std::string>().size(), 1100u);
}

}  // namespace
}  // namespace rwkv::server
