// Defaults the KubeVirt CR's spec.infra.nodePlacement to {} so that
// KubeVirt >= 1.3 does not pin virt-api and virt-controller to control-plane
// nodes, whose PodDisruptionBudgets then block the drain of a lone
// control-plane node (harvester/harvester #7647).
#pragma once

#include "hci_admission/admission/policy.hpp"

namespace hci_admission::webhooks {

class KubeVirtInfraPlacement : public Policy {
 public:
  static constexpr const char *kName = "kubevirt-infra-placement";
  // "true" on the KubeVirt object keeps KubeVirt's own control-plane default.
  static constexpr const char *kOptOutAnnotation = "hci-admission.io/skip-infra-placement";
  static PolicySpec spec();

  Decision review(const AdmissionRequest &request) const override;
};

}  // namespace hci_admission::webhooks
