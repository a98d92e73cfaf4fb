// Subcommands next to serving, e.g. "hci-admission precheck".
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace hci_admission {

struct Command {
  std::string name;
  std::string summary;
  // Gets the arguments after the name and the name the program was called
  // by ("hci-admission", or "kubectl hci-admission" as a kubectl plugin),
  // for its messages; returns the exit code.
  std::function<int(const std::vector<std::string> &args, const std::string &program)> run;
};

std::vector<Command> builtin_commands();
// The commands' lines in --help.
std::string commands_usage(const std::string &program);

// kubectl runs a plugin `kubectl hci-admission` as the executable
// kubectl-hci_admission on the PATH (a link to this binary). Returns the
// name to show: "kubectl hci-admission" when called so, else "hci-admission".
std::string program_name(const char *argv0);

}  // namespace hci_admission
