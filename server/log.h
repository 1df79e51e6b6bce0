// Log: the server's one logging helper (Abseil 20220623 has no absl/log).
// Writes "<UTC time> <level> <message>\n" to stderr in one write, so lines
// from different threads never interleave. Thread-safe.
#ifndef RWKV_SERVER_LOG_H_
#define RWKV_SERVER_LOG_H_

#include <string_view>

namespace rwkv::server {

enum class LogLevel { kInfo, kWarning, kError };

void Log(LogLevel level, std::string_view message);
inline void LogInfo(std::string_view message) { Log(LogLevel::kInfo, message); }
inline void LogWarning(std::string_view message) {
  Log(LogLevel::kWarning, message);
}
inline void LogError(std::string_view message) {
  Log(LogLevel::kError, message);
}

}  // namespace rwkv::server

#endif  // RWKV_SERVER_LOG_H_
