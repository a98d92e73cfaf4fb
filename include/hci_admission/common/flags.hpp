// What every command line here shares: the usage error, the help layout,
// and the parsers of sizes, durations and counts.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace hci_admission {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One flag: its name (without "--"), the name of its value ("" for a
// switch, which takes none), its help line, and what it does with the
// value it is given ("" for a switch). `set` throws UsageError for a value
// it cannot use.
struct Flag {
  std::string name;
  std::string arg;
  std::string help;
  std::function<void(const std::string &value)> set;
};

// A command line's flags, declared as a table: parse() finds each flag's
// value ("--name value" or "--name=value") and hands it to the flag;
// usage() prints the table.
class FlagSet {
 public:
  FlagSet() = default;
  FlagSet(std::initializer_list<Flag> flags) : flags_(flags) {}
  explicit FlagSet(std::vector<Flag> flags) : flags_(std::move(flags)) {}
  void add(Flag flag) { flags_.push_back(std::move(flag)); }
  void add(const std::vector<Flag> &flags) { flags_.insert(flags_.end(), flags.begin(), flags.end()); }
  const Flag *find(const std::string &name) const;
  // Throws UsageError for an argument that is not a flag, an unknown flag
  // (naming `help_hint`, e.g. "see --help"), a switch given a value, or a
  // flag without one.
  void parse(const std::vector<std::string> &args, const std::string &help_hint) const;
  std::string usage() const;

 private:
  std::vector<Flag> flags_;
};

// Help text starts at this column.
constexpr size_t kFlagHelpIndent = 38;
// "  --flag ARG" padded to the help column (or on a line of its own when
// longer), then the help, then a newline.
std::string format_flag_help(const std::string &flag, const std::string &arg, const std::string &help);
// The same for any left column ("  precheck").
std::string format_help_line(std::string left, const std::string &help);

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
