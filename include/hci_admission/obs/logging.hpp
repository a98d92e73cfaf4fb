// Structured log lines: "msg key=value ..." as text, or one JSON object per
// line, chosen once at start-up.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <string>
#include <string_view>

namespace hci_admission {

enum class LogFormat { Text, Json };

// "2026-11-22T12:30:41Z", for certificate dates in logs and messages.
std::string format_utc(std::chrono::system_clock::time_point t);

// Throws std::invalid_argument for an unknown level name.
void setup_logging(LogFormat format, const std::string &level);
LogFormat log_format();

// Builds one line's fields in the chosen format, then emits it.
class LogLine {
 public:
  explicit LogLine(std::string_view message);
  LogLine &field(std::string_view key, std::string_view value);
  LogLine &field(std::string_view key, const char *value) { return field(key, std::string_view(value)); }
  LogLine &field(std::string_view key, const std::string &value) {
    return field(key, std::string_view(value));
  }
  LogLine &field(std::string_view key, long long value);
  LogLine &field(std::string_view key, int value) { return field(key, static_cast<long long>(value)); }
  LogLine &field(std::string_view key, size_t value) { return field(key, static_cast<long long>(value)); }
  LogLine &field(std::string_view key, double value);
  LogLine &field(std::string_view key, bool value);

  void info();
  void warn();
  void error();
  void debug();

 private:
  void emit(spdlog::level::level_enum level);
  std::string text_;
};

}  // namespace hci_admission
