// The composition root: builds the server from parsed options (certificates,
// cluster access, the router with its policies, TLS, the HTTPS and metrics
// listeners, signal handling) and runs it until it is told to stop.
#pragma once

#include "hci_admission/admission/policy.hpp"
#include "hci_admission/app/cli.hpp"

#include <csignal>
#include <stdexcept>
#include <string>
#include <vector>

namespace hci_admission {

// A problem that stops start-up: its one-line message and the exit code
// (2 for what the operator asked wrongly, 1 for what the world refused).
class StartupError : public std::runtime_error {
 public:
  StartupError(int exit_code, const std::string &message)
      : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// Serves until SIGTERM/SIGINT (in `stop_signals`, blocked in every thread)
// and the shutdown delay have passed; returns the exit code. Throws
// StartupError before serving.
int run_server(const Options &options, const std::vector<PolicySpec> &specs, const sigset_t &stop_signals);

}  // namespace hci_admission
