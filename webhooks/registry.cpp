#include "registry.hpp"

#include "csi_controller_placement.hpp"
#include "kubevirt_infra_placement.hpp"
#include "pvc_cleanup_guard.hpp"
#include "upgrade_guard.hpp"

namespace hci_admission::webhooks {

std::vector<PolicySpec> builtin_policies() {
  return {
      CsiControllerPlacement::spec(),
      KubeVirtInfraPlacement::spec(),
      UpgradeGuard::spec(),
      PvcCleanupGuard::spec(),
  };
}

}  // namespace hci_admission::webhooks
