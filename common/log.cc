#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <cmath>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"

namespace rwkv::common {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};

std::string TimeText(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

const char* LevelTag(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo:
      return "I";
    case LogLevel::kWarning:
      return "W";
    case LogLevel::kError:
      return "E";
  }
  return "I";
}

// At most kMaxLoggedClientString bytes of `s`, cut before a UTF-8
// continuation byte, plus how long it was.
std::string Bounded(absl::string_view s) {
  if (s.size() <= kMaxLoggedClientString) return std::string(s);
  size_t n = kMaxLoggedClientString;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return absl::StrCat(s.substr(0, n), "...(", s.size(), " bytes)");
}

std::string JsonLine(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false,
                nlohmann::ordered_json::error_handler_t::replace) +
         "\n";
}

double Millis(absl::Duration d) {
  // Microsecond resolution keeps the numbers short.
  return std::round(absl::ToDoubleMilliseconds(d) * 1000.0) / 1000.0;
}

LogLevel RequestLevel(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
      return LogLevel::kError;
    default:
      return LogLevel::kInfo;
  }
}

void WriteAll(const std::string& line) {
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
}

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(absl::StrCat(
      "log format must be text or json, got '", Bounded(name), "'"));
}

absl::string_view LogFormatName(LogFormat format) {
  return format == LogFormat::kJson ? "json" : "text";
}

void SetLogFormat(LogFormat format) { g_format.store(format); }
LogFormat GetLogFormat() { return g_format.load(); }

std::string FormatLogLine(LogFormat format, absl::Time time, LogLevel level,
                          absl::string_view message) {
  if (format == LogFormat::kJson) {
    return JsonLine({{"time", TimeText(time)},
                     {"level", LevelName(level)},
                     {"message", std::string(message)}});
  }
  return absl::StrCat(TimeText(time), " ", LevelTag(level), " ", message, "\n");
}

std::string FormatRequestLine(LogFormat format, absl::Time time,
                              const RequestLog& r) {
  const LogLevel level = RequestLevel(r.status_code);
  const std::string status = absl::StatusCodeToString(r.status_code);
  const std::string session = Bounded(r.session_id);
  const std::string message = Bounded(r.status_message);
  if (format == LogFormat::kJson) {
    nlohmann::ordered_json j = {
        {"time", TimeText(time)},
        {"level", LevelName(level)},
        {"message", "request"},
        {"method", r.method},
        {"session_id", session},
        {"status", status},
        {"status_code", static_cast<int>(r.status_code)},
        {"status_message", message},
        {"duration_ms", Millis(r.duration)}};
    if (!r.tenant.empty()) j["tenant"] = Bounded(r.tenant);
    if (r.prompt_tokens >= 0) j["prompt_tokens"] = r.prompt_tokens;
    if (r.generated_tokens >= 0) j["generated_tokens"] = r.generated_tokens;
    if (r.cached_tokens >= 0) j["cached_tokens"] = r.cached_tokens;
    return JsonLine(j);
  }
  std::string line = absl::StrCat(
      TimeText(time), " ", LevelTag(level), " request method=", r.method,
      " session_id=\"", absl::CHexEscape(session), "\" status=", status,
      " duration_ms=", Millis(r.duration));
  if (!r.tenant.empty()) {
    absl::StrAppend(&line, " tenant=\"", absl::CHexEscape(Bounded(r.tenant)),
                    "\"");
  }
  if (r.prompt_tokens >= 0)
    absl::StrAppend(&line, " prompt_tokens=", r.prompt_tokens);
  if (r.generated_tokens >= 0) {
    absl::StrAppend(&line, " generated_tokens=", r.generated_tokens);
  }
  if (r.cached_tokens >= 0)
    absl::StrAppend(&line, " cached_tokens=", r.cached_tokens);
  if (!message.empty()) {
    absl::StrAppend(&line, " status_message=\"", absl::CHexEscape(message),
                    "\"");
  }
  line += "\n";
  return line;
}

void Log(LogLevel level, absl::string_view message) {
  WriteAll(FormatLogLine(GetLogFormat(), absl::Now(), level, message));
}

void LogRequest(const RequestLog& request) {
  WriteAll(FormatRequestLine(GetLogFormat(), absl::Now(), request));
}

}  // namespace rwkv::common
