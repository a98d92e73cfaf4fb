#include "hci_admission/common/flags.hpp"

#include "hci_admission/common/text.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

namespace hci_admission {

std::string format_flag_help(const std::string &flag, const std::string &arg, const std::string &help) {
  return format_help_line("  --" + flag + (arg.empty() ? "" : " " + arg), help);
}

std::string format_help_line(std::string left, const std::string &help) {
  if (left.size() < kFlagHelpIndent) {
    left.resize(kFlagHelpIndent, ' ');
  } else {
    left += "\n" + std::string(kFlagHelpIndent, ' ');
  }
  return left + help + "\n";
}

const Flag *FlagSet::find(const std::string &name) const {
  for (const auto &f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

void FlagSet::parse(const std::vector<std::string> &args, const std::string &help_hint) const {
  for (size_t i = 0; i < args.size(); ++i) {
    // -h is --help wherever there is a --help.
    const std::string &arg = args[i] == "-h" && find("help") != nullptr ? "--help" : args[i];
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      throw UsageError("unexpected argument \"" + arg + "\" (" + help_hint + ")");
    }
    std::string name = arg.substr(2);
    std::string value;
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    const Flag *flag = find(name);
    if (flag == nullptr) throw UsageError("unknown flag --" + name + " (" + help_hint + ")");
    if (flag->arg.empty()) {
      if (eq != std::string::npos) throw UsageError("--" + name + " takes no value");
    } else if (eq == std::string::npos) {
      if (i + 1 >= args.size()) throw UsageError("--" + name + " needs a value");
      value = args[++i];
    }
    flag->set(value);
  }
}

std::string FlagSet::usage() const {
  std::string out;
  for (const auto &f : flags_) out += format_flag_help(f.name, f.arg, f.help);
  return out;
}

size_t parse_byte_size(const std::string &text) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0) throw std::invalid_argument("\"" + text + "\" is not a size such as 7MiB");
  const std::string unit = text.substr(i);
  unsigned long long mult = 1;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else if (unit == "K" || unit == "Ki" || unit == "KiB") {
    mult = 1ull << 10;
  } else if (unit == "M" || unit == "Mi" || unit == "MiB") {
    mult = 1ull << 20;
  } else if (unit == "G" || unit == "Gi" || unit == "GiB") {
    mult = 1ull << 30;
  } else {
    throw std::invalid_argument("unknown size unit \"" + unit + "\" (use B, KiB, MiB or GiB)");
  }
  const unsigned long long n = std::strtoull(text.substr(0, i).c_str(), nullptr, 10);
  if (n > (1ull << 40) / mult) throw std::invalid_argument("size " + text + " is too large");
  return static_cast<size_t>(n * mult);
}

std::chrono::milliseconds parse_duration(const std::string &text) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0 || i > 9) throw std::invalid_argument("\"" + text + "\" is not a duration such as 10s");
  const long long n = std::stoll(text.substr(0, i));
  const std::string unit = text.substr(i);
  if (unit == "ms") return std::chrono::milliseconds(n);
  if (unit.empty() || unit == "s") return std::chrono::seconds(n);
  if (unit == "m") return std::chrono::minutes(n);
  if (unit == "h") return std::chrono::hours(n);
  throw std::invalid_argument("unknown duration unit \"" + unit + "\" (use ms, s, m or h)");
}

unsigned long long parse_unsigned_flag(const std::string &flag, const std::string &text,
                                       unsigned long long max) {
  if (text.empty() || !std::all_of(text.begin(), text.end(), ::isdigit)) {
    throw UsageError("--" + flag + " wants a whole number, got \"" + text + "\"");
  }
  uint64_t v = 0;
  if (!parse_decimal(text, v) || v > max) {
    throw UsageError("--" + flag + " must be at most " + std::to_string(max) + ", got " + text);
  }
  return v;
}

std::chrono::milliseconds parse_duration_flag(const std::string &flag, const std::string &text) {
  try {
    auto ms = parse_duration(text);
    if (ms.count() < 1000) throw UsageError("--" + flag + " must be at least 1s, got " + text);
    return ms;
  } catch (const std::invalid_argument &e) {
    throw UsageError("--" + flag + ": " + e.what());
  }
}

size_t parse_byte_size_flag(const std::string &flag, const std::string &text) {
  size_t n = 0;
  try {
    n = parse_byte_size(text);
  } catch (const std::invalid_argument &e) {
    throw UsageError("--" + flag + ": " + e.what());
  }
  if (n == 0) throw UsageError("--" + flag + " must be more than 0");
  return n;
}

}  // namespace hci_admission
