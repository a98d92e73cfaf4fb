// "hci-admission precheck" (or "kubectl hci-admission precheck"): the upgrade guard's decision for an upgrade
// that has not been created yet, with every offending PVC listed, so that
// operators can clean up before they start (the pre-upgrade check
// Harvester users ask for).
#pragma once

#include <string>
#include <vector>

namespace hci_admission::webhooks {

// Exit code 0: an Upgrade would be allowed; 1: refused; 2: usage error.
// PROGRAM is the name the messages give the command ("hci-admission", or
// "kubectl hci-admission" as a kubectl plugin).
int run_upgrade_precheck(const std::vector<std::string> &args, const std::string &program);

}  // namespace hci_admission::webhooks
