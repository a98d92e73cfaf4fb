// Command-line flags: the server's own and those each policy declares.
#pragma once

#include "hci_admission/admission.hpp"
#include "hci_admission/logging.hpp"
#include "hci_admission/server.hpp"

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace hci_admission {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Options {
  bool help = false;
  bool version = false;
  std::string cert_dir;
  HttpsServerConfig server;
  LogFormat log_format = LogFormat::Text;
  std::string log_level = "info";
  std::vector<std::string> enabled_policies;          // empty: all
  std::map<std::string, std::string> policy_options;  // flag -> value
};

// Throws UsageError with a one-line message for an unknown flag, a missing
// value, or a value that does not parse.
Options parse_options(const std::vector<std::string> &args, const std::vector<PolicySpec> &policies);

std::string usage(const std::vector<PolicySpec> &policies);

// "7MiB", "512KiB", "1048576" -> bytes.
size_t parse_byte_size(const std::string &text);
// "10s", "500ms", "2m", "15" (seconds) -> duration.
std::chrono::milliseconds parse_duration(const std::string &text);

}  // namespace hci_admission
