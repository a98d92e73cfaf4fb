// What makes a node drain stick (domain.md §7), as pure functions of the
// objects listed: the upgrade guard's kubevirt-placement and
// pod-disruption-budgets checks.
#pragma once

#include "hci_admission/json/json.hpp"

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace hci_admission::webhooks {

// Why a PodDisruptionBudget selecting `selected_pods` pods can never allow
// a disruption, or nothing: an integer minAvailable of at least the pods it
// selects, maxUnavailable 0 or "0%", minAvailable "100%", or the
// disruption controller's DisruptionAllowed=False with reason SyncFailed
// (pods whose controller has no scale: bare pods, VMI pods).
std::optional<std::string> never_allows_disruption(const Json &pdb, size_t selected_pods);

// A Longhorn instance-manager PDB (in `longhorn_namespace`, its selector's
// matchLabels carrying longhorn.io/component: instance-manager): it blocks
// by design until Longhorn removes it, so rule 1 does not judge it.
bool is_longhorn_instance_manager_pdb(const Json &pdb, const std::string &longhorn_namespace);

// KubeVirt's transient evacuation PDBs: a warning, not a refusal.
bool is_kubevirt_evacuation_pdb(const Json &pdb);

// One object in the way of an upgrade, and why.
struct Blocker {
  std::string object;  // "namespace/name", or the name of a cluster-scoped object
  std::string reason;
};

struct DrainReport {
  std::vector<Blocker> blockers;      // sorted by object
  std::vector<std::string> warnings;  // sorted
};

// What the pod-disruption-budgets check keeps of a pod.
struct PodDigest {
  std::string name;  // namespace/name
  std::string namespace_name;
  Json labels = Json::object();  // metadata.labels
  bool live = false;             // counts towards a PDB: not Succeeded/Failed, not terminating
  bool evicted = false;          // the drain evicts it and the eviction respects PDBs:
                                 // Running, Ready, not terminating, not a DaemonSet or mirror pod
  // A pod spec holding only nodeSelector, required node affinity and
  // tolerations; pods placed alike share one.
  std::shared_ptr<const Json> placement;
};

// Pods digested as they are listed, so the whole list is never held.
class PodDigests {
 public:
  // Fields read: /metadata/{name,namespace,labels,deletionTimestamp,
  // ownerReferences}, /status/{phase,conditions}, /spec/{nodeSelector,
  // tolerations,affinity/nodeAffinity/requiredDuringScheduling...}.
  void add(const Json &pod);
  void clear();
  const std::vector<PodDigest> &pods() const { return pods_; }

 private:
  std::vector<PodDigest> pods_;
  std::unordered_map<std::string, std::shared_ptr<const Json>> placements_;
};

// Check 3, pod-disruption-budgets. A PDB is judged when it selects at least
// one pod the drain would evict (Running, Ready, not terminating, not a
// DaemonSet or mirror pod) and blocks when
//  - it can never allow a disruption (never_allows_disruption), or
//  - such a pod is selected by another PDB too (the Eviction API refuses
//    it forever), or
//  - it needs a healthy pod (status.desiredHealthy >= 1) while the required
//    placement of one of its pods fits at most one schedulable node, so a
//    replacement cannot start elsewhere (#7647 in general).
// Longhorn instance-manager PDBs are judged only by whether their
// longhorn.io/node matches the nodeID of the instance manager they are
// named after (#3730); KubeVirt evacuation PDBs give a warning. A selector
// Kubernetes would refuse gives a warning too.
// Fields read: PDBs /metadata/{name,namespace}, /spec,
// /status/{desiredHealthy,conditions}; nodes as pod_fits_node; instance
// managers /metadata/name, /spec/nodeID.
DrainReport pod_disruption_budget_blockers(const std::vector<Json> &pdbs, const std::vector<PodDigest> &pods,
                                           const std::vector<Json> &nodes,
                                           const std::vector<Json> &instance_managers,
                                           const std::string &longhorn_namespace);
// The same from whole pod objects.
DrainReport pod_disruption_budget_blockers(const std::vector<Json> &pdbs, const std::vector<Json> &pods,
                                           const std::vector<Json> &nodes,
                                           const std::vector<Json> &instance_managers,
                                           const std::string &longhorn_namespace);

// Check 2, kubevirt-placement: KubeVirt CRs without spec.infra.nodePlacement
// (absent or null) in a cluster of more than one node with at most one
// schedulable, non-witness control-plane node: virt-api and
// virt-controller then fit only that node and the drain of it sticks
// (#7647). Empty when nothing is in the way.
struct KubeVirtPlacementReport {
  std::vector<std::string> kubevirts;            // "namespace/name", sorted
  std::vector<std::string> control_plane_nodes;  // the schedulable ones (0 or 1)
};
KubeVirtPlacementReport kubevirt_placement_blockers(const std::vector<Json> &kubevirts,
                                                    const std::vector<Json> &nodes);

// node-role.kubernetes.io/control-plane or .../master, any value.
bool is_control_plane_node(const Json &node);
// node-role.harvesterhci.io/witness=true.
bool is_witness_node(const Json &node);

}  // namespace hci_admission::webhooks
