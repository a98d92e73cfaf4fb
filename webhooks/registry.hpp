// Every policy the binary ships. Adding one: a file pair in webhooks/ and
// one line in registry.cpp.
#pragma once

#include "hci_admission/admission.hpp"

#include <functional>
#include <string>
#include <vector>

namespace hci_admission::webhooks {

std::vector<PolicySpec> builtin_policies();

// Subcommands next to serving, e.g. "hci-admission precheck".
struct Command {
  std::string name;
  std::string summary;
  std::function<int(const std::vector<std::string> &args)> run;
};
std::vector<Command> builtin_commands();

}  // namespace hci_admission::webhooks
