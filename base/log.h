// Minimal structured logging to stderr (journald picks it up under systemd).
// Never pass secret material to these functions: SecureBytes has no formatter on purpose.
#pragma once

#include <string>
#include <string_view>

#include "absl/strings/str_format.h"

namespace strongroom {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLogRole(std::string_view role);  // "broker", "worker[3]"
void SetLogLevel(LogLevel level);
bool ParseLogLevel(std::string_view name, LogLevel* out);
void LogLine(LogLevel level, std::string_view message);

template <typename... Args>
void Log(LogLevel level, const absl::FormatSpec<Args...>& fmt, const Args&... args) {
  LogLine(level, absl::StrFormat(fmt, args...));
}
template <typename... Args>
void LogInfo(const absl::FormatSpec<Args...>& fmt, const Args&... args) {
  LogLine(LogLevel::kInfo, absl::StrFormat(fmt, args...));
}
template <typename... Args>
void LogWarn(const absl::FormatSpec<Args...>& fmt, const Args&... args) {
  LogLine(LogLevel::kWarn, absl::StrFormat(fmt, args...));
}
template <typename... Args>
void LogError(const absl::FormatSpec<Args...>& fmt, const Args&... args) {
  LogLine(LogLevel::kError, absl::StrFormat(fmt, args...));
}
template <typename... Args>
void LogDebug(const absl::FormatSpec<Args...>& fmt, const Args&... args) {
  LogLine(LogLevel::kDebug, absl::StrFormat(fmt, args...));
}

}  // namespace strongroom
