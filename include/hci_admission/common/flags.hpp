// What every command line here shares: the usage error, the help layout,
// and the parsers of sizes, durations and counts.
#pragma once

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace hci_admission {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One flag's line in --help.
struct FlagHelp {
  const char *flag;  // without the leading "--"
  const char *arg;   // "" for a flag without a value
  const char *help;
};

// Help text starts at this column.
constexpr size_t kFlagHelpIndent = 38;
// "  --flag ARG" padded to the help column (or on a line of its own when
// longer), then the help, then a newline.
std::string format_flag_help(const std::string &flag, const std::string &arg, const std::string &help);

// "7MiB", "512KiB", "1048576" -> bytes. Throws std::invalid_argument.
size_t parse_byte_size(const std::string &text);
// "10s", "500ms", "2m", "15" (seconds) -> duration. Throws std::invalid_argument.
std::chrono::milliseconds parse_duration(const std::string &text);

// The value of --flag as a whole number no larger than `max`, a duration
// of at least a second, or a size of at least a byte; each throws
// UsageError naming the flag.
unsigned long long parse_unsigned_flag(const std::string &flag, const std::string &text,
                                       unsigned long long max);
std::chrono::milliseconds parse_duration_flag(const std::string &flag, const std::string &text);
size_t parse_byte_size_flag(const std::string &flag, const std::string &text);

}  // namespace hci_admission
