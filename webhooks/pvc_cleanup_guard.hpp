// Guards the two annotations through which Harvester deletes a guest
// cluster's PVCs when its VMs go (domain.md 9): Harvester's VM controller
// deletes every PVC named in harvesterhci.io/removedPersistentVolumeClaims,
// and nothing checks that list, so one wrong edit deletes detached data
// disks or a guest cluster's CSI volumes (harvester/harvester #3272).
// A name is allowed when it is a claim of the VM itself, or, on a VM that a
// guest-cluster teardown marked removeAllPersistentVolumeClaims: "true", a
// PVC labelled as that guest cluster's. Both writers that exist (the node
// driver's Remove() and Harvester's VM delete) pass.
#pragma once

#include "hci_admission/admission/policy.hpp"

#include <string>
#include <vector>

namespace hci_admission::webhooks {

class PvcCleanupGuard : public Policy {
 public:
  static constexpr const char *kName = "pvc-cleanup-guard";
  static constexpr const char *kRemovedAnnotation = "harvesterhci.io/removedPersistentVolumeClaims";
  static constexpr const char *kRemoveAllAnnotation = "harvesterhci.io/removeAllPersistentVolumeClaims";
  static constexpr const char *kGuestClusterLabel = "guestcluster.harvesterhci.io/name";
  static PolicySpec spec();

  // `may_remove_all`: users, and groups as "group:NAME", who may set
  // removeAllPersistentVolumeClaims to "true"; empty lets anyone.
  PvcCleanupGuard(const ClusterView &cluster, std::vector<std::string> may_remove_all);
  Decision review(const AdmissionRequest &request) const override;
  // Only a changed list that names PVCs not the VM's own, on a VM a
  // guest-cluster teardown marked, needs the cluster; everything else is
  // answered on the event loop.
  bool reads_cluster_for(const AdmissionRequest &request) const override;

 private:
  const ClusterView &cluster_;
  std::vector<std::string> may_remove_all_;
};

}  // namespace hci_admission::webhooks
