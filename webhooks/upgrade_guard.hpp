// Refuses a Harvester Upgrade while single-replica Longhorn volumes exist:
// the upgrade drains every node, and a volume with one replica either
// blocks the drain or loses its only copy when that node goes down
// (harvester/harvester #4467, #7323). Same rule as Harvester v1.5.0's
// upgrade validator, with the differences in ../shared/docs/domain.md 2.
#pragma once

#include "hci_admission/admission/policy.hpp"

#include <string>
#include <vector>

namespace hci_admission::webhooks {

class UpgradeGuard : public Policy {
 public:
  static constexpr const char *kName = "upgrade-guard";
  static constexpr const char *kSkipDetachedAnnotation = "harvesterhci.io/skipSingleReplicaDetachedVol";
  static constexpr const char *kSkipWebhookAnnotation = "harvesterhci.io/skipWebhook";
  static PolicySpec spec();

  // A single-replica volume, as the guard reports it.
  struct Volume {
    std::string name;     // Longhorn volume name
    std::string pvc;      // "namespace/pvc", or the volume name when it has no PVC
    std::string state;    // status.state, may be ""
    bool active = false;  // creating, attached or attaching
  };

  // The decision and what it was made from, for the webhook and precheck.
  struct Evaluation {
    Decision decision;
    std::vector<Volume> single_replica;  // sorted by pvc
    std::vector<Volume> offending;       // those that caused a denial
    size_t nodes = 0;
  };

  UpgradeGuard(const ClusterView &cluster, std::string longhorn_namespace);
  Decision review(const AdmissionRequest &request) const override;

  // The decision for an Upgrade with these annotations (object.metadata.annotations).
  Evaluation evaluate(const Json &annotations, Deadline deadline) const;

 private:
  const ClusterView &cluster_;
  std::string longhorn_namespace_;
};

}  // namespace hci_admission::webhooks
