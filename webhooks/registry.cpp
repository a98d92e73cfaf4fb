#include "registry.hpp"

#include "csi_controller_placement.hpp"
#include "kubevirt_infra_placement.hpp"

namespace hci_admission::webhooks {

std::vector<PolicySpec> builtin_policies() {
  return {
      CsiControllerPlacement::spec(),
      KubeVirtInfraPlacement::spec(),
  };
}

}  // namespace hci_admission::webhooks
