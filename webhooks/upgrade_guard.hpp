// Refuses a Harvester upgrade (a v1 Upgrade or an Upgrade V2 UpgradePlan)
// that would hurt the cluster or stick half-way:
//  - concurrent-upgrades: another upgrade of either kind is in progress
//    (409 Conflict, checked first, not bypassed by skipWebhook);
//  - single-replica-volumes: the drain either blocks on a volume with one
//    replica or loses its only copy (#4467, #7323), Harvester v1.5.0's rule
//    with the differences in ../shared/docs/domain.md 2;
//  - kubevirt-placement and pod-disruption-budgets: a node drain that can
//    never finish, the upgrade stuck in "Pre-drained" (#7647, domain.md 7).
// Every failing check of the last three is reported in one 422 refusal.
#pragma once

#include "drain_blockers.hpp"
#include "hci_admission/admission/policy.hpp"

#include <string>
#include <vector>

namespace hci_admission::webhooks {

class UpgradeGuard : public Policy {
 public:
  static constexpr const char *kName = "upgrade-guard";
  static constexpr const char *kSkipDetachedAnnotation = "harvesterhci.io/skipSingleReplicaDetachedVol";
  static constexpr const char *kSkipWebhookAnnotation = "harvesterhci.io/skipWebhook";
  static constexpr const char *kSkipChecksAnnotation = "hci-admission.io/skip-checks";

  // The checks, by the names messages, precheck and skip-checks use.
  static constexpr const char *kConcurrentUpgrades = "concurrent-upgrades";
  static constexpr const char *kSingleReplicaVolumes = "single-replica-volumes";
  static constexpr const char *kKubeVirtPlacement = "kubevirt-placement";
  static constexpr const char *kPodDisruptionBudgets = "pod-disruption-budgets";

  static PolicySpec spec();

  struct Namespaces {
    std::string longhorn = "longhorn-system";   // volumes, instance managers
    std::string kubevirt = "harvester-system";  // the KubeVirt CR
    std::string upgrades = "harvester-system";  // v1 Upgrades
  };

  // A single-replica volume, as the guard reports it.
  struct Volume {
    std::string name;     // Longhorn volume name
    std::string pvc;      // "namespace/pvc", or the volume name when it has no PVC
    std::string state;    // status.state, may be ""
    bool active = false;  // creating, attached or attaching
    // It causes the denial: active, or any when detached ones are not
    // allowed. Decided here once, for the message and precheck's marks.
    bool offending = false;
  };

  enum class CheckState { Passed, Failed, Skipped, NotRun };
  struct CheckResult {
    std::string name;
    CheckState state = CheckState::NotRun;
    std::vector<Blocker> objects;  // what fails it, sorted
    std::string message;           // why it failed, or why it was skipped or not run
  };

  // The decision and what it was made from, for the webhook and precheck.
  struct Evaluation {
    Decision decision;
    std::vector<CheckResult> checks;     // concurrent-upgrades first, then 1-3 in order
    std::vector<Volume> single_replica;  // sorted by pvc
    size_t nodes = 0;
  };

  UpgradeGuard(const ClusterView &cluster, Namespaces namespaces);
  Decision review(const AdmissionRequest &request) const override;

  // The decision for an upgrade with these annotations
  // (object.metadata.annotations), whichever kind it is.
  Evaluation evaluate(const Json &annotations, Deadline deadline) const;

 private:
  const ClusterView &cluster_;
  Namespaces namespaces_;
};

const char *to_string(UpgradeGuard::CheckState state);

}  // namespace hci_admission::webhooks
