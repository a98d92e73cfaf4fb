// hci-admission: parses the command line and hands over to a subcommand or
// to run_server (server_app.cpp), which wires everything together.
#include "hci_admission/app/cli.hpp"
#include "hci_admission/app/commands.hpp"
#include "hci_admission/app/server_app.hpp"
#include "hci_admission/obs/logging.hpp"
#include "registry.hpp"

#include <malloc.h>
#include <pthread.h>

#include <csignal>
#include <iostream>

using namespace hci_admission;

namespace {

int fail(const std::string &program, int code, const std::string &message) {
  std::cerr << program << ": " << message << std::endl;
  return code;
}

}  // namespace

int main(int argc, char **argv) {
  // Request bodies over 128 KiB get pages of their own, given back when
  // freed. glibc would otherwise raise the threshold to the size of the
  // largest block freed, and later bodies would stay in the heap: 60
  // hostile 7 MiB bodies peaked at 38 MiB RSS with the sliding threshold,
  // 32 MiB with it fixed at glibc's default.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  // Signals go to one thread that waits for them; a closed peer must not
  // kill the process through SIGPIPE.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  const std::vector<std::string> args(argv + 1, argv + argc);
  const std::string program = program_name(argv[0]);
  for (const auto &command : builtin_commands()) {
    if (!args.empty() && command.name == args.front()) {
      return command.run({args.begin() + 1, args.end()}, program);
    }
  }
  // `kubectl hci-admission` alone: what the plugin can do, not a server's
  // complaint about --cert-dir.
  if (args.empty() && program != "hci-admission") {
    std::cout << "Usage: " << program << " COMMAND [flags]\n"
              << commands_usage(program) << "\nThe server itself: " << program << " --help\n";
    return 0;
  }
  const auto specs = webhooks::builtin_policies();
  Options options;
  try {
    options = parse_options(args, specs);
  } catch (const UsageError &e) {
    return fail(program, 2, e.what());
  }
  if (options.help) {
    std::cout << usage(specs, program) << commands_usage(program);
    return 0;
  }
  if (options.version) {
    std::cout << "hci-admission " << HCI_ADMISSION_VERSION << std::endl;
    return 0;
  }
  if (options.cert_dir.empty()) return fail(program, 2, "--cert-dir is required (see --help)");
  setup_logging(options.log_format, options.log_level);
  int code = 0;
  try {
    code = run_server(options, specs, stop_signals);
    LogLine("stopped").info();
  } catch (const StartupError &e) {
    code = fail(program, e.exit_code(), e.what());  // one line, nothing else
  }
  spdlog::shutdown();  // writes out what the async logger still holds
  return code;
}
