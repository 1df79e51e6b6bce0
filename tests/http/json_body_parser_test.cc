// JsonBodyParser: documents within the limits parse exactly; depth and value
// limits, syntax errors and invalid UTF-8 are refused with the byte offset
// and the field being parsed.
#include "server/http/json_body_parser.h"

#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/app/field_error.h"

namespace rwkv::server {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::StatusOr<nlohmann::json>& r) {
  return std::string(r.status().message());
}

TEST(JsonBodyParserTest, ParsesADocument) {
  absl::StatusOr<nlohmann::json> r = JsonBodyParser().Parse(
      R"({"a": [1, 2.5, "x", {"b": null, "c": true}], "d": "é"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r,
            nlohmann::json::parse(
                R"({"a": [1, 2.5, "x", {"b": null, "c": true}], "d": "é"})"));
}

TEST(JsonBodyParserTest, RefusesDeepNestingWhereItIs) {
  JsonLimits limits;
  limits.max_depth = 4;
  absl::StatusOr<nlohmann::json> r =
      JsonBodyParser(limits).Parse(R"({"a": {"b": [[{"c": 1}]]}})");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(r), HasSubstr("nested deeper than 4 levels"));
  EXPECT_THAT(Message(r), HasSubstr("(in a.b[0][0])"));
  // 100k levels of brackets in 200 KB stop at the limit (no recursion).
  const std::string deep(100000, '[');
  EXPECT_THAT(Message(JsonBodyParser().Parse(deep)),
              HasSubstr("nested deeper than 32 levels"));
}

TEST(JsonBodyParserTest, RefusesTooManyValues) {
  JsonLimits limits;
  limits.max_values = 100;
  std::string many = "[";
  for (int i = 0; i < 200; ++i) many += "0,";
  many += "0]";
  absl::StatusOr<nlohmann::json> r = JsonBodyParser(limits).Parse(many);
  EXPECT_THAT(Message(r), HasSubstr("more than 100 values"));
}

TEST(JsonBodyParserTest, RefusesStructureBeyondItsMemoryBudget) {
  // {"a0":0,"a1":0,...}: about 8 body bytes per member, far more than
  // 4 x that in map nodes, keys and values.
  JsonLimits limits;
  limits.extra_bytes = 0;
  std::string dense = "{";
  for (int i = 0; i < 20000; ++i) {
    dense += (i ? ",\"a" : "\"a") + std::to_string(i) + "\":0";
  }
  dense += "}";
  absl::StatusOr<nlohmann::json> r = JsonBodyParser(limits).Parse(dense);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(r), HasSubstr("more structure than its size allows"));
  // A realistic request (long message text) is far inside the budget.
  const std::string chat = R"({"messages": [{"role": "user", "content": ")" +
                           std::string(100000, 'x') + R"("}], "stream": true})";
  EXPECT_TRUE(JsonBodyParser(limits).Parse(chat).ok());
}

TEST(JsonBodyParserTest, SyntaxErrorsNameTheOffsetAndField) {
  absl::StatusOr<nlohmann::json> r = JsonBodyParser().Parse(
      R"({"messages": [{"role": "user", "content": "hi"}, {"role": x}]})");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(r), HasSubstr("not valid JSON at byte offset 58"));
  EXPECT_THAT(Message(r), HasSubstr("(in messages[1].role)"));
  EXPECT_EQ(ErrorField(r.status()), "messages[1].role");
  EXPECT_THAT(Message(JsonBodyParser().Parse("")), HasSubstr("body is empty"));
  EXPECT_THAT(Message(JsonBodyParser().Parse("{} x")),
              HasSubstr("not valid JSON"));
}

TEST(JsonBodyParserTest, InvalidUtf8IsRefusedInItsField) {
  absl::StatusOr<nlohmann::json> r = JsonBodyParser().Parse(
      "{\"messages\": [{\"content\": \"ok \xff bad\"}]}");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(r), HasSubstr("UTF-8"));
  EXPECT_THAT(Message(r), HasSubstr("(in messages[0].content)"));
  EXPECT_EQ(ErrorField(r.status()), "messages[0].content");
  // At the top there is no field to name.
  EXPECT_EQ(ErrorField(JsonBodyParser().Parse("\xff").status()), std::nullopt);
  // A lone surrogate escape is not text either.
  EXPECT_THAT(Message(JsonBodyParser().Parse(R"({"a": "\ud800"})")),
              HasSubstr("surrogate"));
}

}  // namespace
}  // namespace rwkv::server
