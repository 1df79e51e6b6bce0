// The programs' one logging facility (Abseil 20220623 has no absl/log).
//
// Every record is one line written to stderr with a single write(2), so lines
// from different threads never interleave. Two formats, chosen once at
// startup with SetLogFormat (rwkv-server --log-format):
//   text: "2024-05-01T12:00:00.123Z I message"            (I, W or E)
//   json: {"time":"2024-05-01T12:00:00.123Z","level":"info","message":"..."}
// A request record (LogRequest) adds its fields: in JSON "method",
// "session_id", "status" (the canonical code's name, e.g. "NOT_FOUND"),
// "status_code" (its number), "status_message", "duration_ms" and, where set,
// "prompt_tokens", "generated_tokens" and "cached_tokens". Strings that come
// from clients (session ids, status messages) are cut to a bounded length so
// that no request can make a log line large; invalid UTF-8 becomes U+FFFD in
// JSON. Thread-safe.
#ifndef RWKV_COMMON_LOG_H_
#define RWKV_COMMON_LOG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace rwkv::common {

enum class LogLevel { kInfo, kWarning, kError };
enum class LogFormat { kText, kJson };

// "text" / "json"; errors name the accepted values.
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name);
absl::string_view LogFormatName(LogFormat format);

// Process-wide; text until set. Set it before the first record (records
// written concurrently with the change use either format).
void SetLogFormat(LogFormat format);
LogFormat GetLogFormat();

void Log(LogLevel level, absl::string_view message);
inline void LogInfo(absl::string_view message) {
  Log(LogLevel::kInfo, message);
}
inline void LogWarning(absl::string_view message) {
  Log(LogLevel::kWarning, message);
}
inline void LogError(absl::string_view message) {
  Log(LogLevel::kError, message);
}

// One finished RPC, written by the RPC layer once per call.
struct RequestLog {
  // The RPC's name, e.g. "CreateSession" or "/rwkv.v1.ChatService/Chat".
  std::string method;
  // Empty when the request names no session.
  std::string session_id;
  // The authenticated tenant; empty (and omitted) without API keys.
  std::string tenant;
  absl::StatusCode status_code = absl::StatusCode::kOk;
  std::string status_message;
  // From the call's arrival to its final status.
  absl::Duration duration;
  // Token counts of generating calls; negative: not applicable (omitted).
  int64_t prompt_tokens = -1;
  int64_t generated_tokens = -1;
  int64_t cached_tokens = -1;
};

// Level: error for INTERNAL, UNKNOWN and DATA_LOSS (server faults), info for
// every other code (client errors are the client's business, not the
// operator's). The message is "request".
void LogRequest(const RequestLog& request);

// The lines Log and LogRequest write (with the trailing newline), for tests.
std::string FormatLogLine(LogFormat format, absl::Time time, LogLevel level,
                          absl::string_view message);
std::string FormatRequestLine(LogFormat format, absl::Time time,
                              const RequestLog& request);

// Longest client-supplied string a request record keeps; longer ones keep
// their head and say how long they were.
inline constexpr size_t kMaxLoggedClientString = 256;

}  // namespace rwkv::common

#endif  // RWKV_COMMON_LOG_H_
