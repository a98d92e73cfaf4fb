// Subcommands next to serving, e.g. "hci-admission precheck".
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace hci_admission {

struct Command {
  std::string name;
  std::string summary;
  // Gets the arguments after the name; returns the exit code.
  std::function<int(const std::vector<std::string> &args)> run;
};

std::vector<Command> builtin_commands();
// The commands' lines in --help.
std::string commands_usage();

}  // namespace hci_admission
