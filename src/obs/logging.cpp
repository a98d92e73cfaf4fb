#include "hci_admission/obs/logging.hpp"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <ctime>
#include <stdexcept>

namespace hci_admission {
namespace {

LogFormat g_format = LogFormat::Text;

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

std::string json_string(std::string_view v) {
  return nlohmann::json(std::string(v)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string format_utc(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void setup_logging(LogFormat format, const std::string &level) {
  const auto lvl = spdlog::level::from_str(level);
  // from_str answers "off" for any name it does not know.
  if (lvl == spdlog::level::off && level != "off") {
    throw std::invalid_argument("unknown log level \"" + level +
                                "\" (want trace, debug, info, warn, error or off)");
  }
  g_format = format;
  // One logger for everything, to stderr, as container runtimes expect.
  auto logger =
      std::make_shared<spdlog::logger>("hci-admission", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (format == LogFormat::Json) {
    logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",%v})",
                        spdlog::pattern_time_type::utc);
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
  }
  logger->set_level(lvl);
  spdlog::set_default_logger(logger);
}

LogFormat log_format() { return g_format; }

LogLine::LogLine(std::string_view message) {
  if (g_format == LogFormat::Json) {
    text_ = "\"msg\":" + json_string(message);
  } else {
    text_ = std::string(message);
  }
}

LogLine &LogLine::field(std::string_view key, std::string_view value) {
  if (g_format == LogFormat::Json) {
    text_ += ',';
    text_ += json_string(key);
    text_ += ':';
    text_ += json_string(value);
  } else {
    text_ += ' ';
    text_ += key;
    text_ += '=';
    text_ += needs_quotes(value) ? json_string(value) : std::string(value);
  }
  return *this;
}

LogLine &LogLine::field(std::string_view key, long long value) {
  if (g_format == LogFormat::Json) {
    text_ += ',' + json_string(key) + ':' + std::to_string(value);
  } else {
    text_ += ' ' + std::string(key) + '=' + std::to_string(value);
  }
  return *this;
}

LogLine &LogLine::field(std::string_view key, double value) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf - 1, value, std::chars_format::fixed, 3);
  *(ec == std::errc() ? end : buf) = '\0';
  if (g_format == LogFormat::Json) {
    text_ += ',' + json_string(key) + ':' + buf;
  } else {
    text_ += ' ' + std::string(key) + '=' + buf;
  }
  return *this;
}

LogLine &LogLine::field(std::string_view key, bool value) {
  if (g_format == LogFormat::Json) {
    text_ += ',' + json_string(key) + ':' + (value ? "true" : "false");
  } else {
    text_ += ' ' + std::string(key) + '=' + (value ? "true" : "false");
  }
  return *this;
}

void LogLine::emit(spdlog::level::level_enum level) { spdlog::default_logger_raw()->log(level, "{}", text_); }

void LogLine::info() { emit(spdlog::level::info); }
void LogLine::warn() { emit(spdlog::level::warn); }
void LogLine::error() { emit(spdlog::level::err); }
void LogLine::debug() { emit(spdlog::level::debug); }

}  // namespace hci_admission
