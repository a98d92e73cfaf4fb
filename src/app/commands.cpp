#include "hci_admission/app/commands.hpp"

#include "hci_admission/common/flags.hpp"
#include "registry.hpp"
#include "upgrade_precheck.hpp"

#include <algorithm>
#include <iostream>

namespace hci_admission {
namespace {

// The rules (and matchConditions) each policy declares, in the shape of a
// webhook configuration's, keyed by the policy's path.
int print_rules(const std::vector<std::string> &args, const std::string &program) {
  if (!args.empty()) {
    std::cerr << program << " rules: takes no arguments" << std::endl;
    return 2;
  }
  Json out = Json::object();
  for (const auto &spec : webhooks::builtin_policies()) {
    Json rules = Json::array();
    for (const auto &rule : spec.rules) rules.push_back(rule.to_webhook_rule());
    Json hook = {{"rules", std::move(rules)}};
    if (!spec.match_conditions.empty()) {
      hook["matchConditions"] = Json::array();
      for (const auto &c : spec.match_conditions) {
        hook["matchConditions"].push_back({{"name", c.name}, {"expression", c.expression}});
      }
    }
    out[spec.path()] = std::move(hook);
  }
  std::cout << out.dump(2) << std::endl;
  return 0;
}

}  // namespace

std::vector<Command> builtin_commands() {
  return {
      {"precheck", "would an upgrade be refused now? (see precheck --help)", webhooks::run_upgrade_precheck},
      {"rules", "the webhook configuration rules and matchConditions of each policy, as JSON", print_rules},
  };
}

std::string commands_usage(const std::string &program) {
  std::string s = "\nCommands (" + program + " COMMAND --help):\n";
  for (const auto &c : builtin_commands()) s += format_help_line("  " + c.name, c.summary);
  return s;
}

std::string program_name(const char *argv0) {
  const std::string path = argv0 != nullptr ? argv0 : "";
  const std::string base = path.substr(path.find_last_of('/') + 1);
  return base == "kubectl-hci_admission" ? "kubectl hci-admission" : "hci-admission";
}

}  // namespace hci_admission
