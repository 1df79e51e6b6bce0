// The wire formats: chat and text completion chunks and bodies, and the
// Responses API's object and typed events, field by field as OpenAI sends
// them.
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/http/completion_format.h"
#include "server/http/response_format.h"

namespace rwkv::server {
namespace {

using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::StartsWith;

TurnChunk Last(FinishReason reason) {
  TurnChunk last;
  last.finish_reason = reason;
  last.prompt_tokens = 20;
  last.cached_tokens = 12;
  last.generated_tokens = 3;
  return last;
}

TurnChunk Text(const std::string& text) {
  TurnChunk c;
  c.text = text;
  c.token_ids = {1, 2};
  return c;
}

// The data payloads of an SSE text, in order.
std::vector<std::string> Data(const std::string& sse) {
  std::vector<std::string> out;
  for (absl::string_view event : absl::StrSplit(sse, "\n\n")) {
    for (absl::string_view line : absl::StrSplit(event, '\n')) {
      if (absl::StartsWith(line, "data: ")) {
        out.emplace_back(line.substr(6));
      }
    }
  }
  return out;
}

TEST(CompletionFormatTest, ChatStreamIsOpenAIs) {
  CompletionFormat f(CompletionFormat::Kind::kChat, "m", true);
  std::string sse = f.StreamStart();
  sse += f.StreamChunk(Text(" Hi"));
  sse += f.StreamChunk(Text(""));  // tokens without text: nothing
  sse += f.StreamEnd(" Hi", Last(FinishReason::kEos));
  std::vector<std::string> data = Data(sse);
  ASSERT_EQ(data.size(), 5u);
  json first = json::parse(data[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_THAT(first["id"].get<std::string>(), StartsWith("chatcmpl-"));
  EXPECT_EQ(first["model"], "m");
  EXPECT_EQ(first["choices"][0]["delta"],
            json::parse(R"({"role": "assistant", "content": ""})"));
  EXPECT_TRUE(first["usage"].is_null());
  json text = json::parse(data[1]);
  EXPECT_EQ(text["choices"][0]["delta"], json::parse(R"({"content": " Hi"})"));
  EXPECT_TRUE(text["choices"][0]["finish_reason"].is_null());
  json end = json::parse(data[2]);
  EXPECT_EQ(end["choices"][0]["delta"], json::object());
  EXPECT_EQ(end["choices"][0]["finish_reason"], "stop");  // end-of-text
  json usage = json::parse(data[3]);
  EXPECT_EQ(usage["choices"], json::array());
  EXPECT_EQ(usage["usage"], json::parse(R"({"prompt_tokens": 20,
      "completion_tokens": 3, "total_tokens": 23,
      "prompt_tokens_details": {"cached_tokens": 12},
      "completion_tokens_details": {"reasoning_tokens": 0}})"));
  EXPECT_EQ(data[4], "[DONE]");
  EXPECT_EQ(first["id"], usage["id"]);
  // Without include_usage there is no usage member and no usage chunk.
  CompletionFormat plain(CompletionFormat::Kind::kChat, "m", false);
  std::string sse2 = plain.StreamChunk(Text("x"));
  sse2 += plain.StreamEnd("x", Last(FinishReason::kLength));
  std::vector<std::string> d2 = Data(sse2);
  ASSERT_EQ(d2.size(), 3u);
  EXPECT_FALSE(json::parse(d2[0]).contains("usage"));
  EXPECT_EQ(json::parse(d2[1])["choices"][0]["finish_reason"], "length");
}

TEST(CompletionFormatTest, ReturnTokenIdsSendsEveryTokensIds) {
  CompletionFormat f(CompletionFormat::Kind::kText, "m", false,
                     /*return_token_ids=*/true);
  std::vector<std::string> data = Data(f.StreamChunk(Text("")));
  ASSERT_EQ(data.size(), 1u);
  json c = json::parse(data[0]);
  EXPECT_EQ(c["choices"][0]["token_ids"], json::array({1, 2}));
  EXPECT_EQ(c["choices"][0]["text"], "");
}

TEST(CompletionFormatTest, WholeBodiesAndErrors) {
  CompletionFormat chat(CompletionFormat::Kind::kChat, "m", false);
  json body = chat.Whole(" Paris.", Last(FinishReason::kStop));
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(body["choices"][0]["message"]["content"], " Paris.");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(body["usage"]["prompt_tokens_details"]["cached_tokens"], 12);
  CompletionFormat text(CompletionFormat::Kind::kText, "m", false);
  json t = text.Whole(" once", Last(FinishReason::kLength));
  EXPECT_EQ(t["object"], "text_completion");
  EXPECT_THAT(t["id"].get<std::string>(), StartsWith("cmpl-"));
  EXPECT_EQ(t["choices"][0]["text"], " once");
  EXPECT_EQ(text.StreamStart(), "");
  std::vector<std::string> err =
      Data(chat.StreamError(absl::AbortedError("session deleted")));
  ASSERT_EQ(err.size(), 2u);
  EXPECT_EQ(json::parse(err[0])["error"]["code"], "aborted");
  EXPECT_EQ(err[1], "[DONE]");
}

TEST(ResponseFormatTest, StreamEventsAndTheStoredObject) {
  ResponseFormat::Request r;
  r.id = "resp_1";
  r.model = "m";
  r.instructions = "Be brief.";
  r.previous_response_id = "resp_0";
  r.max_output_tokens = 50;
  ResponseFormat f(r);
  std::string sse = f.StreamStart();
  sse += f.StreamChunk(Text(" Hi"));
  sse += f.StreamEnd(" Hi", Last(FinishReason::kStop));
  std::vector<std::string> types;
  int64_t expected_sequence = 0;
  for (const std::string& d : Data(sse)) {
    json e = json::parse(d);
    types.push_back(e["type"]);
    EXPECT_EQ(e["sequence_number"], expected_sequence++);
  }
  EXPECT_THAT(
      types,
      ElementsAre("response.created", "response.in_progress",
                  "response.output_item.added", "response.content_part.added",
                  "response.output_text.delta", "response.output_text.done",
                  "response.content_part.done", "response.output_item.done",
                  "response.completed"));
  EXPECT_NE(sse.find("event: response.output_text.delta\ndata: "),
            std::string::npos);
  json whole = f.Whole(" Hi", Last(FinishReason::kStop));
  EXPECT_EQ(whole["id"], "resp_1");
  EXPECT_EQ(whole["object"], "response");
  EXPECT_EQ(whole["status"], "completed");
  EXPECT_EQ(whole["previous_response_id"], "resp_0");
  EXPECT_EQ(whole["instructions"], "Be brief.");
  EXPECT_EQ(whole["output"][0]["type"], "message");
  EXPECT_EQ(whole["output"][0]["role"], "assistant");
  EXPECT_EQ(whole["output"][0]["content"][0]["type"], "output_text");
  EXPECT_EQ(whole["output"][0]["content"][0]["text"], " Hi");
  EXPECT_EQ(whole["usage"], json::parse(R"({"input_tokens": 20,
      "input_tokens_details": {"cached_tokens": 12}, "output_tokens": 3,
      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 23})"));
  json cut = f.Whole(" H", Last(FinishReason::kLength));
  EXPECT_EQ(cut["status"], "incomplete");
  EXPECT_EQ(cut["incomplete_details"]["reason"], "max_output_tokens");
}

}  // namespace
}  // namespace rwkv::server
