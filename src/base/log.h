// One key=value line per event, session id first (OpenSMTPD's habit).
// Lines go to stderr with a single write(2), so threads never interleave.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace base {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// The logging settings ([log] in the configuration). Plain data.
struct LogOptions {
  std::string level = "info";  // debug, info, warning, error (ParseLogLevel)
  bool sessions = true;        // one summary line per session
};

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool ParseLogLevel(std::string_view text, LogLevel* out);
inline bool LogEnabled(LogLevel level) { return level >= GetLogLevel(); }

// Builds one line and emits it on destruction:
//   LogLine(LogLevel::kInfo, "connect").Kv("session", id).Kv("client", ip);
// prints "2026-11-25T22:50:01.123Z info event=connect session=... client=...".
// Values containing spaces, quotes or control bytes are quoted and escaped.
class LogLine {
 public:
  LogLine(LogLevel level, std::string_view event);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  LogLine& Kv(std::string_view key, std::string_view value);
  LogLine& Kv(std::string_view key, const char* value) {
    return Kv(key, std::string_view(value));
  }
  LogLine& Kv(std::string_view key, const std::string& value) {
    return Kv(key, std::string_view(value));
  }
  LogLine& Kv(std::string_view key, int64_t value);
  LogLine& Kv(std::string_view key, uint64_t value);
  LogLine& Kv(std::string_view key, int value) {
    return Kv(key, int64_t(value));
  }
  LogLine& Kv(std::string_view key, unsigned value) {
    return Kv(key, uint64_t(value));
  }
  LogLine& Kv(std::string_view key, double value);

 private:
  bool enabled_;
  std::string line_;
};

// Appends value to out, quoted and escaped if it needs to be.
void AppendLogValue(std::string* out, std::string_view value);

}  // namespace base
