#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace base {
namespace {
std::atomic<int> g_level{int(LogLevel::kInfo)};
const char* LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}
}  // namespace

void SetLogLevel(LogLevel level) { g_level = int(level); }
LogLevel GetLogLevel() { return LogLevel(g_level.load()); }

bool ParseLogLevel(std::string_view text, LogLevel* out) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning,
                     LogLevel::kError}) {
    if (text == LevelName(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

void AppendLogValue(std::string* out, std::string_view value) {
  bool plain = !value.empty();
  for (unsigned char c : value) {
    if (c <= ' ' || c == '"' || c == '\\' || c == '=' || c >= 0x7f) {
      plain = false;
      break;
    }
  }
  if (plain) {
    out->append(value);
    return;
  }
  out->push_back('"');
  for (unsigned char c : value) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(char(c));
    } else if (c < ' ' || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out->append(buf);
    } else {
      out->push_back(char(c));
    }
  }
  out->push_back('"');
}

LogLine::LogLine(LogLevel level, std::string_view event)
    : enabled_(LogEnabled(level)) {
  if (!enabled_) return;
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  int ms = int(std::chrono::duration_cast<std::chrono::milliseconds>(
                   now.time_since_epoch())
                   .count() %
               1000);
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ ",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, ms);
  line_.reserve(160);
  line_ = buf;
  line_ += LevelName(level);
  line_ += " event=";
  line_ += event;
}

LogLine::~LogLine() {
  if (!enabled_) return;
  line_.push_back('\n');
  ssize_t r = ::write(2, line_.data(), line_.size());
  (void)r;
}

LogLine& LogLine::Kv(std::string_view key, std::string_view value) {
  if (!enabled_) return *this;
  line_.push_back(' ');
  line_.append(key);
  line_.push_back('=');
  AppendLogValue(&line_, value);
  return *this;
}

LogLine& LogLine::Kv(std::string_view key, int64_t value) {
  return enabled_ ? Kv(key, std::string_view(std::to_string(value))) : *this;
}
LogLine& LogLine::Kv(std::string_view key, uint64_t value) {
  return enabled_ ? Kv(key, std::string_view(std::to_string(value))) : *this;
}
LogLine& LogLine::Kv(std::string_view key, double value) {
  if (!enabled_) return *this;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", value);
  return Kv(key, std::string_view(buf));
}

}  // namespace base
