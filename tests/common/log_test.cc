// common/log.h: the text and JSON line formats, request records, and that
// Log() writes the process-wide format to stderr.
#include "common/log.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace rwkv::common {
namespace {

using json = nlohmann::json;

// 2024-05-01T12:00:00.123Z
const absl::Time kTime = absl::FromUnixMillis(1714564800123);

json ParseLine(const std::string& line) {
  EXPECT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line: " << line;
  return json::parse(line);
}

TEST(LogTest, TextLines) {
  EXPECT_EQ(FormatLogLine(LogFormat::kText, kTime, LogLevel::kInfo, "hello"),
            "2024-05-01T12:00:00.123Z I hello\n");
  EXPECT_EQ(FormatLogLine(LogFormat::kText, kTime, LogLevel::kWarning, "w"),
            "2024-05-01T12:00:00.123Z W w\n");
  EXPECT_EQ(FormatLogLine(LogFormat::kText, kTime, LogLevel::kError, "e"),
            "2024-05-01T12:00:00.123Z E e\n");
}

TEST(LogTest, JsonLinesStartWithTimeLevelMessage) {
  const std::string line = FormatLogLine(LogFormat::kJson, kTime,
                                         LogLevel::kWarning, "say \"hi\"\n");
  const json j = ParseLine(line);
  EXPECT_EQ(line.rfind("{\"time\":\"2024-05-01T12:00:00.123Z\",\"level\":"
                       "\"warning\",\"message\":",
                       0),
            0u)
      << line;
  EXPECT_EQ(j["message"], "say \"hi\"\n");
  EXPECT_EQ(j.size(), 3u);
}

TEST(LogTest, RequestRecordAsJson) {
  RequestLog r;
  r.method = "Chat";
  r.session_id = "alice";
  r.status_code = absl::StatusCode::kNotFound;
  r.status_message = "session_id: no session 'alice'";
  r.duration = absl::Microseconds(12500);
  r.prompt_tokens = 3;
  r.generated_tokens = 7;
  const json j = ParseLine(FormatRequestLine(LogFormat::kJson, kTime, r));
  EXPECT_EQ(j["time"], "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["message"], "request");
  EXPECT_EQ(j["method"], "Chat");
  EXPECT_EQ(j["session_id"], "alice");
  EXPECT_EQ(j["status"], "NOT_FOUND");
  EXPECT_EQ(j["status_code"], 5);
  EXPECT_EQ(j["status_message"], "session_id: no session 'alice'");
  EXPECT_DOUBLE_EQ(j["duration_ms"].get<double>(), 12.5);
  EXPECT_EQ(j["prompt_tokens"], 3);
  EXPECT_EQ(j["generated_tokens"], 7);
  EXPECT_FALSE(j.contains("cached_tokens"));
}

TEST(LogTest, ServerFaultsAreErrors) {
  RequestLog r;
  r.method = "ExportState";
  r.status_code = absl::StatusCode::kInternal;
  EXPECT_EQ(ParseLine(FormatRequestLine(LogFormat::kJson, kTime, r))["level"],
            "error");
  const std::string text = FormatRequestLine(LogFormat::kText, kTime, r);
  EXPECT_EQ(text,
            "2024-05-01T12:00:00.123Z E request method=ExportState "
            "session_id=\"\" status=INTERNAL duration_ms=0\n");
  r.status_code = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(ParseLine(FormatRequestLine(LogFormat::kJson, kTime, r))["level"],
            "info");
}

TEST(LogTest, TextRequestRecordEscapesClientStrings) {
  RequestLog r;
  r.method = "CreateSession";
  r.session_id = "a\nb\"c";
  r.status_code = absl::StatusCode::kInvalidArgument;
  r.status_message = "bad\tid";
  r.duration = absl::Milliseconds(2);
  r.cached_tokens = 4;
  EXPECT_EQ(FormatRequestLine(LogFormat::kText, kTime, r),
            "2024-05-01T12:00:00.123Z I request method=CreateSession "
            "session_id=\"a\\nb\\\"c\" status=INVALID_ARGUMENT duration_ms=2 "
            "cached_tokens=4 status_message=\"bad\\tid\"\n");
}

TEST(LogTest, ClientStringsAreBoundedAndInvalidUtf8IsReplaced) {
  RequestLog r;
  r.method = "GetSession";
  r.session_id = std::string(10000, 'x');
  r.status_message = "bad byte \xff here";
  const std::string line = FormatRequestLine(LogFormat::kJson, kTime, r);
  EXPECT_LT(line.size(), 1000u);
  const json j = ParseLine(line);
  const std::string id = j["session_id"];
  EXPECT_EQ(id, std::string(kMaxLoggedClientString, 'x') + "...(10000 bytes)");
  EXPECT_EQ(j["status_message"], "bad byte \xef\xbf\xbd here");
  // A multi-byte character is never cut in half.
  r.session_id = std::string(kMaxLoggedClientString - 1, 'x') + "\xc3\xa9";
  r.session_id += std::string(10, 'y');
  const json k = ParseLine(FormatRequestLine(LogFormat::kJson, kTime, r));
  EXPECT_EQ(k["session_id"], std::string(kMaxLoggedClientString - 1, 'x') +
                                 "...(" + std::to_string(r.session_id.size()) +
                                 " bytes)");
}

TEST(LogTest, ParseLogFormat) {
  EXPECT_EQ(*ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(ParseLogFormat("xml").status().message(),
            "log format must be text or json, got 'xml'");
  EXPECT_EQ(LogFormatName(LogFormat::kJson), "json");
  EXPECT_EQ(LogFormatName(LogFormat::kText), "text");
}

// Runs `f` with stderr redirected to a file and returns what it wrote.
template <typename F>
std::string CaptureStderr(F f) {
  std::FILE* tmp = std::tmpfile();
  const int saved = dup(STDERR_FILENO);
  dup2(fileno(tmp), STDERR_FILENO);
  f();
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string out;
  std::rewind(tmp);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), tmp)) > 0) out.append(buf, n);
  std::fclose(tmp);
  return out;
}

TEST(LogTest, LogWritesTheChosenFormatToStderr) {
  ASSERT_EQ(GetLogFormat(), LogFormat::kText);
  SetLogFormat(LogFormat::kJson);
  const std::string out = CaptureStderr([] {
    LogError("disk full");
    RequestLog r;
    r.method = "Chat";
    r.generated_tokens = 2;
    LogRequest(r);
  });
  SetLogFormat(LogFormat::kText);
  const size_t nl = out.find('\n');
  ASSERT_NE(nl, std::string::npos) << out;
  const json first = json::parse(out.substr(0, nl));
  EXPECT_EQ(first["level"], "error");
  EXPECT_EQ(first["message"], "disk full");
  const json second = json::parse(out.substr(nl + 1));
  EXPECT_EQ(second["method"], "Chat");
  EXPECT_EQ(second["generated_tokens"], 2);
  const std::string text = CaptureStderr([] { LogInfo("plain"); });
  EXPECT_EQ(text.substr(text.size() - 9), " I plain\n") << text;
}

}  // namespace
}  // namespace rwkv::common
