#include "registry.hpp"

#include "csi_controller_placement.hpp"
#include "kubevirt_infra_placement.hpp"
#include "upgrade_guard.hpp"
#include "upgrade_precheck.hpp"

namespace hci_admission::webhooks {

std::vector<PolicySpec> builtin_policies() {
  return {
      CsiControllerPlacement::spec(),
      KubeVirtInfraPlacement::spec(),
      UpgradeGuard::spec(),
  };
}

}  // namespace hci_admission::webhooks

namespace hci_admission::webhooks {

std::vector<Command> builtin_commands() {
  return {
      {"precheck", "would an upgrade be refused now? (see hci-admission precheck --help)",
       run_upgrade_precheck},
  };
}

}  // namespace hci_admission::webhooks
