#include "drain_blockers.hpp"

#include "kube_selectors.hpp"
#include "node_placement.hpp"
#include "policy_util.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

namespace hci_admission::webhooks {
namespace {

bool sync_failed(const Json &pdb) {
  const Json &conditions = member_or_null(member_or_null(pdb, "status"), "conditions");
  if (!conditions.is_array()) return false;
  for (const auto &c : conditions) {
    if (text_of(member_or_null(c, "type")) == "DisruptionAllowed" &&
        text_of(member_or_null(c, "status")) == "False" &&
        text_of(member_or_null(c, "reason")) == "SyncFailed") {
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<std::string> never_allows_disruption(const Json &pdb, size_t selected_pods) {
  const Json &spec = member_or_null(pdb, "spec");
  const Json &min_available = member_or_null(spec, "minAvailable");
  const Json &max_unavailable = member_or_null(spec, "maxUnavailable");
  if (min_available.is_number_integer() && min_available.get<long long>() >= 0 &&
      static_cast<unsigned long long>(min_available.get<long long>()) >= selected_pods) {
    return "minAvailable " + std::to_string(min_available.get<long long>()) + " of " +
           std::to_string(selected_pods) + " pods";
  }
  if (text_of(min_available) == "100%") return "minAvailable 100%";
  if ((max_unavailable.is_number_integer() && max_unavailable.get<long long>() == 0) ||
      text_of(max_unavailable) == "0%") {
    return "maxUnavailable 0";
  }
  if (sync_failed(pdb)) return "DisruptionAllowed=False (SyncFailed): its pods' controller has no scale";
  return std::nullopt;
}

bool is_longhorn_instance_manager_pdb(const Json &pdb, const std::string &longhorn_namespace) {
  const Json &meta = member_or_null(pdb, "metadata");
  if (text_of(member_or_null(meta, "namespace")) != longhorn_namespace) return false;
  const Json &labels = member_or_null(member_or_null(member_or_null(pdb, "spec"), "selector"), "matchLabels");
  return text_of(member_or_null(labels, "longhorn.io/component")) == "instance-manager";
}

bool is_kubevirt_evacuation_pdb(const Json &pdb) {
  return text_of(member_or_null(member_or_null(pdb, "metadata"), "name"))
             .rfind("kubevirt-migration-pdb-kubevirt-evacuation-", 0) == 0;
}

namespace {

std::string object_name(const Json &obj) {
  const Json &meta = member_or_null(obj, "metadata");
  const std::string ns = text_of(member_or_null(meta, "namespace"));
  const std::string name = text_of(member_or_null(meta, "name"));
  return ns.empty() ? name : ns + "/" + name;
}

bool has_condition(const Json &obj, const char *type, const char *status) {
  const Json &conditions = member_or_null(member_or_null(obj, "status"), "conditions");
  return conditions.is_array() && std::any_of(conditions.begin(), conditions.end(), [&](const Json &c) {
           return text_of(member_or_null(c, "type")) == type &&
                  text_of(member_or_null(c, "status")) == status;
         });
}

// DaemonSet pods are skipped by the drain (--ignore-daemonsets) and mirror
// pods (owned by their Node) cannot be evicted through the API at all.
bool drain_skips(const Json &pod) {
  const Json &owners = member_or_null(member_or_null(pod, "metadata"), "ownerReferences");
  return owners.is_array() && std::any_of(owners.begin(), owners.end(), [](const Json &o) {
           const std::string kind = text_of(member_or_null(o, "kind"));
           return kind == "DaemonSet" || kind == "Node";
         });
}

// Pods of one namespace, with an index from "key=value" to the pods that
// carry that label, so a PDB's selector looks only at candidates: 1,000
// PDBs over 10,000 pods in one namespace would otherwise be 10 million
// label matches.
struct NamespacePods {
  std::vector<size_t> all;
  std::unordered_map<std::string, std::vector<size_t>> by_label;
};

std::map<std::string, NamespacePods> index_pods(const std::vector<PodDigest> &pods) {
  std::map<std::string, NamespacePods> out;
  for (size_t i = 0; i < pods.size(); ++i) {
    NamespacePods &ns = out[pods[i].namespace_name];
    ns.all.push_back(i);
    const Json &labels = pods[i].labels;
    if (!labels.is_object()) continue;
    for (auto it = labels.begin(); it != labels.end(); ++it) {
      if (it->is_string()) ns.by_label[std::string(it.key()) + "=" + it->get<std::string>()].push_back(i);
    }
  }
  return out;
}

// The pods of `ns` that `selector` selects, in pod order.
std::vector<size_t> selected_pods(const KubeLabelSelector &selector, const NamespacePods &ns,
                                  const std::vector<PodDigest> &pods) {
  if (selector.selects_nothing()) return {};
  const std::vector<size_t> *candidates = &ns.all;
  std::vector<size_t> merged;
  for (const auto &r : selector.requirements()) {
    if (r.op != KubeLabelSelector::Operator::In) continue;
    for (const auto &v : r.values) {
      const auto hit = ns.by_label.find(r.key + "=" + v);
      if (hit != ns.by_label.end()) merged.insert(merged.end(), hit->second.begin(), hit->second.end());
    }
    // In [a, a] is valid and would list a pod twice.
    std::sort(merged.begin(), merged.end());
    merged.erase(std::unique(merged.begin(), merged.end()), merged.end());
    candidates = &merged;
    break;
  }
  std::vector<size_t> out;
  for (size_t i : *candidates) {
    if (selector.matches(pods[i].labels)) out.push_back(i);
  }
  return out;
}

// The nodes a pod's replacement could be scheduled on, once per placement:
// the pods of one workload share it.
class PlacementCache {
 public:
  explicit PlacementCache(const std::vector<Json> &nodes) : nodes_(nodes) {}
  const std::vector<std::string> &fitting(const PodDigest &pod) {
    static const Json kAnywhere = Json::object();
    const Json *placement = pod.placement ? pod.placement.get() : &kAnywhere;
    auto it = cache_.find(placement);
    if (it == cache_.end()) it = cache_.emplace(placement, node_names_fitting(*placement, nodes_)).first;
    return it->second;
  }

 private:
  const std::vector<Json> &nodes_;
  std::unordered_map<const Json *, std::vector<std::string>> cache_;
};

// #3730: an instance-manager PDB pinned to another node than its instance
// manager's is never deleted by Longhorn.
void judge_instance_manager_pdb(const Json &pdb, const std::map<std::string, std::string> &manager_nodes,
                                bool managers_known, DrainReport &report) {
  const std::string name = text_of(member_or_null(member_or_null(pdb, "metadata"), "name"));
  const std::string pinned = text_of(
      member_or_null(member_or_null(member_or_null(member_or_null(pdb, "spec"), "selector"), "matchLabels"),
                     "longhorn.io/node"));
  if (!managers_known) return;
  const auto manager = manager_nodes.find(name);
  if (manager == manager_nodes.end()) {
    report.warnings.push_back("PDB " + object_name(pdb) + " names no instance manager; Longhorn may keep it");
    return;
  }
  if (!pinned.empty() && pinned != manager->second) {
    report.blockers.push_back({object_name(pdb), "longhorn.io/node " + pinned +
                                                     " but its instance manager is on " + manager->second +
                                                     ": Longhorn never deletes it (#3730); delete this PDB"});
  }
}

}  // namespace

void PodDigests::add(const Json &pod) {
  PodDigest d;
  const Json &meta = member_or_null(pod, "metadata");
  d.namespace_name = text_of(member_or_null(meta, "namespace"));
  d.name = d.namespace_name + "/" + text_of(member_or_null(meta, "name"));
  const Json &labels = member_or_null(meta, "labels");
  if (labels.is_object()) d.labels = labels;
  const std::string phase = text_of(member_or_null(member_or_null(pod, "status"), "phase"));
  const bool terminating = !member_or_null(meta, "deletionTimestamp").is_null();
  d.live = !terminating && phase != "Succeeded" && phase != "Failed";
  // Pending pods ignore budgets. A not-Ready pod is evicted only while the
  // budget is otherwise met (currentHealthy >= desiredHealthy > 0); it is
  // not judged here, as the rules count Ready pods.
  d.evicted = d.live && phase == "Running" && has_condition(pod, "Ready", "True") && !drain_skips(pod);
  if (d.evicted) {
    const Json &spec = member_or_null(pod, "spec");
    Json placement = Json::object();
    for (const char *key : {"nodeSelector", "tolerations"}) {
      if (!member_or_null(spec, key).is_null()) placement[key] = spec[key];
    }
    const Json &required = member_or_null(member_or_null(member_or_null(spec, "affinity"), "nodeAffinity"),
                                          "requiredDuringSchedulingIgnoredDuringExecution");
    if (!required.is_null())
      placement["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = required;
    std::string key = json_text(placement);
    auto it = placements_.find(key);
    if (it == placements_.end()) {
      it = placements_.emplace(std::move(key), std::make_shared<const Json>(std::move(placement))).first;
    }
    d.placement = it->second;
  }
  pods_.push_back(std::move(d));
}

void PodDigests::clear() {
  pods_.clear();
  placements_.clear();
}

DrainReport pod_disruption_budget_blockers(const std::vector<Json> &pdbs, const std::vector<Json> &pods,
                                           const std::vector<Json> &nodes,
                                           const std::vector<Json> &instance_managers,
                                           const std::string &longhorn_namespace) {
  PodDigests digests;
  for (const auto &p : pods) digests.add(p);
  return pod_disruption_budget_blockers(pdbs, digests.pods(), nodes, instance_managers, longhorn_namespace);
}

namespace {

// How many of the budgets that select one pod are kept to be named; the
// rest are only counted.
constexpr size_t kBudgetsNamed = 4;

// The judged PDBs that select one pod the drain evicts: the first few, and
// how many there are.
struct BudgetsOfPod {
  std::vector<size_t> named;
  size_t count = 0;
};

// Rules 1 and 3 for one PDB that is neither Longhorn's nor KubeVirt's: why
// it blocks (empty when it does not); records it against each pod it
// selects that the drain evicts, for rule 2.
std::vector<std::string> judge_budget(const Json &pdb, const std::vector<size_t> &selected,
                                      const std::vector<PodDigest> &pods, PlacementCache &placement,
                                      size_t index, std::vector<BudgetsOfPod> &budgets_of) {
  std::vector<std::string> reasons;
  size_t live = 0;
  bool evicts = false;
  for (size_t p : selected) {
    live += pods[p].live;
    evicts = evicts || pods[p].evicted;
  }
  if (!evicts) return reasons;  // nothing the drain would evict under this budget
  if (auto why = never_allows_disruption(pdb, live)) reasons.push_back(*why);
  const Json &desired = member_or_null(member_or_null(pdb, "status"), "desiredHealthy");
  const bool needs_healthy = desired.is_number_integer() && desired.get<long long>() >= 1;
  bool placement_reported = false;
  for (size_t p : selected) {
    if (!pods[p].evicted) continue;
    // Two budgets make a pod unevictable; a few are kept to name them,
    // so 1,000 PDBs over one namespace's pods stay bounded.
    ++budgets_of[p].count;
    if (budgets_of[p].named.size() < kBudgetsNamed) budgets_of[p].named.push_back(index);
    if (!needs_healthy || placement_reported) continue;
    const auto &fit = placement.fitting(pods[p]);
    if (fit.size() > 1) continue;
    placement_reported = true;
    reasons.push_back("pod " + pods[p].name + " fits " +
                      (fit.empty() ? std::string("no schedulable node") : "only node " + fit[0]) + " and " +
                      std::to_string(desired.get<long long>()) +
                      " must stay healthy: no replacement can start elsewhere");
  }
  return reasons;
}

// Rule 2: the Eviction API refuses a pod with more than one budget. Each
// PDB names the first such pod.
void name_overlaps(const std::vector<PodDigest> &pods, const std::vector<BudgetsOfPod> &budgets_of,
                   const std::vector<std::string> &names, std::vector<std::vector<std::string>> &reasons) {
  std::vector<bool> overlap_named(names.size(), false);
  for (size_t p = 0; p < pods.size(); ++p) {
    if (budgets_of[p].count < 2) continue;
    for (size_t i : budgets_of[p].named) {
      if (overlap_named[i]) continue;
      overlap_named[i] = true;
      std::vector<std::string> others;
      for (size_t j : budgets_of[p].named) {
        if (j != i) others.push_back(names[j]);
      }
      reasons[i].push_back("pod " + pods[p].name + " is also selected by " +
                           capped_list(others, kBudgetsNamed - 1, budgets_of[p].count - 1) +
                           ", and a pod with two budgets is never evicted");
    }
  }
}

std::map<std::string, std::string> nodes_of_instance_managers(const std::vector<Json> &instance_managers) {
  std::map<std::string, std::string> out;
  for (const auto &im : instance_managers) {
    out[text_of(member_or_null(member_or_null(im, "metadata"), "name"))] =
        text_of(member_or_null(member_or_null(im, "spec"), "nodeID"));
  }
  return out;
}

}  // namespace

DrainReport pod_disruption_budget_blockers(const std::vector<Json> &pdbs, const std::vector<PodDigest> &pods,
                                           const std::vector<Json> &nodes,
                                           const std::vector<Json> &instance_managers,
                                           const std::string &longhorn_namespace) {
  DrainReport report;
  const auto by_namespace = index_pods(pods);
  const auto manager_nodes = nodes_of_instance_managers(instance_managers);
  PlacementCache placement(nodes);
  // The judged PDBs that select each pod the drain evicts.
  std::vector<BudgetsOfPod> budgets_of(pods.size());
  std::vector<std::vector<std::string>> reasons(pdbs.size());
  std::vector<std::string> names(pdbs.size());
  for (size_t i = 0; i < pdbs.size(); ++i) {
    const Json &pdb = pdbs[i];
    names[i] = object_name(pdb);
    if (is_kubevirt_evacuation_pdb(pdb)) {
      report.warnings.push_back("evacuation PDB " + names[i] + ": a VM is migrating; Harvester waits for it");
      continue;
    }
    if (is_longhorn_instance_manager_pdb(pdb, longhorn_namespace)) {
      judge_instance_manager_pdb(pdb, manager_nodes, !instance_managers.empty(), report);
      continue;
    }
    KubeLabelSelector selector;
    try {
      selector = KubeLabelSelector::from_json(member_or_null(member_or_null(pdb, "spec"), "selector"),
                                              "PodDisruptionBudget " + names[i] + " spec.selector");
    } catch (const ShapeError &e) {
      report.warnings.push_back(std::string(e.what()) + "; not judged");
      continue;
    }
    const auto ns = by_namespace.find(text_of(member_or_null(member_or_null(pdb, "metadata"), "namespace")));
    if (ns == by_namespace.end()) continue;
    reasons[i] = judge_budget(pdb, selected_pods(selector, ns->second, pods), pods, placement, i, budgets_of);
  }
  name_overlaps(pods, budgets_of, names, reasons);
  for (size_t i = 0; i < pdbs.size(); ++i) {
    if (!reasons[i].empty()) report.blockers.push_back({names[i], joined(reasons[i], "; ")});
  }
  std::sort(report.blockers.begin(), report.blockers.end(),
            [](const Blocker &a, const Blocker &b) { return a.object < b.object; });
  std::sort(report.warnings.begin(), report.warnings.end());
  return report;
}

bool is_control_plane_node(const Json &node) {
  const Json &labels = member_or_null(member_or_null(node, "metadata"), "labels");
  return labels.is_object() && (labels.contains("node-role.kubernetes.io/control-plane") ||
                                labels.contains("node-role.kubernetes.io/master"));
}

bool is_witness_node(const Json &node) {
  return text_of(member_or_null(member_or_null(member_or_null(node, "metadata"), "labels"),
                                "node-role.harvesterhci.io/witness")) == "true";
}

KubeVirtPlacementReport kubevirt_placement_blockers(const std::vector<Json> &kubevirts,
                                                    const std::vector<Json> &nodes) {
  KubeVirtPlacementReport report;
  if (nodes.size() <= 1) return report;
  for (const auto &n : nodes) {
    if (is_control_plane_node(n) && !is_witness_node(n) &&
        member_or_null(member_or_null(n, "spec"), "unschedulable") != true) {
      report.control_plane_nodes.push_back(text_of(member_or_null(member_or_null(n, "metadata"), "name")));
    }
  }
  if (report.control_plane_nodes.size() > 1) {
    report.control_plane_nodes.clear();
    return report;
  }
  for (const auto &kv : kubevirts) {
    if (member_or_null(member_or_null(member_or_null(kv, "spec"), "infra"), "nodePlacement").is_null()) {
      report.kubevirts.push_back(object_name(kv));
    }
  }
  std::sort(report.kubevirts.begin(), report.kubevirts.end());
  if (report.kubevirts.empty()) report.control_plane_nodes.clear();
  return report;
}

}  // namespace hci_admission::webhooks
