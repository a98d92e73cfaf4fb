#include "upgrade_guard.hpp"

#include "policy_util.hpp"
#include "upgrade_progress.hpp"

#include <algorithm>
#include <optional>
#include <set>

namespace hci_admission::webhooks {
namespace {

using Volume = UpgradeGuard::Volume;

// Harvester's own wording (pkg/webhook/resources/upgrade/validator.go), so
// that runbooks matching on it keep working.
constexpr const char *kAnyMessage =
    "Following PVCs with single-replica volume, even the volume is detached, upgrade may have potential data "
    "integrity concerns: ";
constexpr const char *kActiveMessage =
    "Following PVCs with active single-replica volume, please consider shutdown the corresponding workload "
    "before upgrade: ";
// A denial names this many PVCs, KubeVirt CRs or unknown check names (and
// PDBs and upgrades in progress, each with its reason); `hci-admission
// precheck` lists them all.
constexpr size_t kNamesInMessage = 50;
constexpr size_t kBlockersInMessage = 20;

Decision invalid(std::string message) {
  Decision d = Decision::deny(422, "Invalid", message);
  d.causes.push_back({"FieldValueInvalid", std::move(message), ""});
  return d;
}

std::string name_list(const std::vector<UpgradeGuard::Volume> &volumes, size_t limit) {
  std::vector<std::string> names;
  names.reserve(volumes.size());
  for (const auto &v : volumes) names.push_back(v.pvc);
  return capped_list(names, limit);
}

// "prefix (N): a, b" split into warnings of at most 120 bytes.
void warn_listing(Decision &d, const std::string &prefix, const std::vector<UpgradeGuard::Volume> &volumes) {
  std::string line = prefix + " (" + std::to_string(volumes.size()) + "):";
  for (const auto &v : volumes) {
    if (line.size() + 1 + v.pvc.size() > 120) {
      d.warn(line);
      line.clear();
    }
    line += (line.empty() || line.back() == ':' ? " " : ", ") + v.pvc;
    if (line.front() == ' ') line.erase(0, 1);
  }
  if (!line.empty()) d.warn(line);
}

// The lists the guard reads, each with only the fields its check uses.
enum Read : size_t {
  kNodes,
  kVolumes,
  kKubeVirts,
  kPods,
  kPdbs,
  kInstanceManagers,
  kUpgrades,
  kUpgradePlans,
  kReads
};

std::vector<ListQuery> queries(const UpgradeGuard::Namespaces &ns) {
  std::vector<ListQuery> q(kReads);
  q[kNodes] = {{"", "v1", "nodes", "Node", ""},
               {"/metadata/name", "/metadata/labels", "/spec/taints", "/spec/unschedulable"},
               {}};
  q[kVolumes] = {{"longhorn.io", "v1beta2", "volumes", "Volume", ns.longhorn},
                 {"/metadata/name", "/spec/numberOfReplicas", "/status/state",
                  "/status/kubernetesStatus/namespace", "/status/kubernetesStatus/pvcName"},
                 {}};
  q[kKubeVirts] = {{"kubevirt.io", "v1", "kubevirts", "KubeVirt", ns.kubevirt},
                   {"/metadata/name", "/metadata/namespace", "/spec/infra/nodePlacement"},
                   {}};
  q[kPods] = {
      {"", "v1", "pods", "Pod", ""},
      {"/metadata/name", "/metadata/namespace", "/metadata/labels", "/metadata/deletionTimestamp",
       "/metadata/ownerReferences", "/status/phase", "/status/conditions", "/spec/nodeSelector",
       "/spec/tolerations", "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution"},
      {}};
  q[kPdbs] = {
      {"policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", ""},
      {"/metadata/name", "/metadata/namespace", "/spec", "/status/desiredHealthy", "/status/conditions"},
      {}};
  q[kInstanceManagers] = {{"longhorn.io", "v1beta2", "instancemanagers", "InstanceManager", ns.longhorn},
                          {"/metadata/name", "/spec/nodeID"},
                          {}};
  q[kUpgrades] = {{"harvesterhci.io", "v1beta1", "upgrades", "Upgrade", ns.upgrades},
                  {"/metadata/name", "/metadata/namespace", "/metadata/labels"},
                  {}};
  q[kUpgradePlans] = {{"management.harvesterhci.io", "v1beta1", "upgradeplans", "UpgradePlan", ""},
                      {"/metadata/name", "/status/conditions", "/status/currentPhase"},
                      {}};
  return q;
}

// Kinds that only an optional component provides: not served counts as none.
bool optional_kind(size_t read) {
  return read == kKubeVirts || read == kInstanceManagers || read == kUpgrades || read == kUpgradePlans;
}

// The check names hci-admission.io/skip-checks accepts.
const std::vector<std::string> &skippable_checks() {
  static const std::vector<std::string> names = {UpgradeGuard::kKubeVirtPlacement,
                                                 UpgradeGuard::kPodDisruptionBudgets};
  return names;
}

std::string blocker_list(const std::vector<Blocker> &blockers, size_t limit) {
  std::vector<std::string> named;
  named.reserve(blockers.size());
  for (const auto &b : blockers) named.push_back(b.object + " (" + b.reason + ")");
  return capped_list(named, limit);
}

// The volume as the guard reports it, when it has a single replica.
std::optional<Volume> single_replica_volume(const Json &v) {
  const Json &replicas = member_or_null(member_or_null(v, "spec"), "numberOfReplicas");
  if (!replicas.is_number_integer() || replicas.get<int64_t>() != 1) return std::nullopt;
  const Json &status = member_or_null(v, "status");
  const Json &kube = member_or_null(status, "kubernetesStatus");
  Volume vol;
  vol.name = text_of(member_or_null(member_or_null(v, "metadata"), "name"));
  vol.state = text_of(member_or_null(status, "state"));
  vol.active = vol.state == "creating" || vol.state == "attached" || vol.state == "attaching";
  const std::string pvc = text_of(member_or_null(kube, "pvcName"));
  vol.pvc = pvc.empty() ? vol.name : text_of(member_or_null(kube, "namespace")) + "/" + pvc;
  return vol;
}

// What the annotations ask for; `error` set when they cannot be followed.
struct Bypasses {
  bool skip_webhook = false;
  std::string skip_webhook_value;
  bool skip_detached = false;
  std::set<std::string> skip_checks;
  std::string error;
};

Bypasses read_bypasses(const Json &annotations) {
  Bypasses b;
  const Json upgrade = {{"metadata", {{"annotations", annotations}}}};
  b.skip_webhook = read_bool_annotation(upgrade, UpgradeGuard::kSkipWebhookAnnotation,
                                        &b.skip_webhook_value) == BoolAnnotation::True;
  std::string value;
  const BoolAnnotation skip = read_bool_annotation(upgrade, UpgradeGuard::kSkipDetachedAnnotation, &value);
  if (skip == BoolAnnotation::Invalid) {
    b.error = "annotation " + std::string(UpgradeGuard::kSkipDetachedAnnotation) + " has value \"" + value +
              "\"; accepted values are \"true\" and \"false\" (any case), or leave it out";
    return b;
  }
  b.skip_detached = skip == BoolAnnotation::True;
  const Json &listed = member_or_null(annotations, UpgradeGuard::kSkipChecksAnnotation);
  std::vector<std::string> unknown;
  for (const auto &name : split_list(text_of(listed))) {
    const auto &valid = skippable_checks();
    if (std::find(valid.begin(), valid.end(), name) == valid.end()) {
      unknown.push_back("\"" + name + "\"");
    } else {
      b.skip_checks.insert(name);
    }
  }
  if (!listed.is_null() && !listed.is_string()) unknown.push_back(json_text(listed));
  if (!unknown.empty()) {
    b.error = "annotation " + std::string(UpgradeGuard::kSkipChecksAnnotation) + " names unknown checks " +
              capped_list(unknown, kNamesInMessage) + "; the checks it can skip are " +
              capped_list(skippable_checks(), kNamesInMessage);
  }
  return b;
}

UpgradeGuard::CheckResult &check(UpgradeGuard::Evaluation &e, const char *name) {
  return *std::find_if(e.checks.begin(), e.checks.end(),
                       [&](const UpgradeGuard::CheckResult &c) { return c.name == name; });
}

void fail(UpgradeGuard::CheckResult &c, std::string message) {
  c.state = UpgradeGuard::CheckState::Failed;
  c.message = std::move(message);
}

void skip(UpgradeGuard::Evaluation &e, std::initializer_list<const char *> names, const std::string &why) {
  for (const char *name : names) {
    check(e, name).state = UpgradeGuard::CheckState::Skipped;
    check(e, name).message = why;
  }
}

void judge_single_replica(UpgradeGuard::Evaluation &e, std::vector<Volume> single_replica,
                          bool skip_detached) {
  auto &c = check(e, UpgradeGuard::kSingleReplicaVolumes);
  c.state = UpgradeGuard::CheckState::Passed;
  std::sort(single_replica.begin(), single_replica.end(), [](const Volume &a, const Volume &b) {
    return a.pvc < b.pvc || (a.pvc == b.pvc && a.name < b.name);
  });
  e.single_replica = std::move(single_replica);
  std::vector<Volume> offending;
  std::vector<Volume> detached;
  for (auto &v : e.single_replica) {
    v.offending = !skip_detached || v.active;
    (v.offending ? offending : detached).push_back(v);
  }
  for (const auto &v : offending) c.objects.push_back({v.pvc, v.state.empty() ? "no state" : v.state});
  if (!offending.empty()) {
    fail(c, (skip_detached ? kActiveMessage : kAnyMessage) + name_list(offending, kNamesInMessage));
  } else if (!detached.empty()) {
    warn_listing(e.decision,
                 "single-replica volumes not attached, allowed by " +
                     std::string(UpgradeGuard::kSkipDetachedAnnotation),
                 detached);
  }
}

void judge_kubevirt_placement(UpgradeGuard::Evaluation &e, const std::vector<Json> &kubevirts,
                              const std::vector<Json> &nodes) {
  auto &c = check(e, UpgradeGuard::kKubeVirtPlacement);
  c.state = UpgradeGuard::CheckState::Passed;
  const auto report = kubevirt_placement_blockers(kubevirts, nodes);
  if (report.kubevirts.empty()) return;
  const std::string where =
      report.control_plane_nodes.empty()
          ? std::string("there is no schedulable control-plane node")
          : report.control_plane_nodes[0] + " is the only schedulable control-plane node";
  for (const auto &k : report.kubevirts) {
    c.objects.push_back({k, "spec.infra.nodePlacement not set; " + where});
  }
  fail(c, "KubeVirt " + capped_list(report.kubevirts, kNamesInMessage) +
              " has no spec.infra.nodePlacement and " + where +
              ": virt-api and virt-controller may run only there, so draining it never finishes "
              "(harvester/harvester #7647); set spec.infra.nodePlacement: {} (what "
              "/mutate/kubevirt-infra-placement does)");
}

void judge_pod_disruption_budgets(UpgradeGuard::Evaluation &e, const std::vector<std::vector<Json>> &lists,
                                  const PodDigests &pods, const std::string &longhorn_namespace) {
  auto &c = check(e, UpgradeGuard::kPodDisruptionBudgets);
  c.state = UpgradeGuard::CheckState::Passed;
  DrainReport report = pod_disruption_budget_blockers(lists[kPdbs], pods.pods(), lists[kNodes],
                                                      lists[kInstanceManagers], longhorn_namespace);
  for (auto &w : report.warnings) e.decision.warn(std::string(UpgradeGuard::kName) + ": " + w);
  if (report.blockers.empty()) return;
  c.objects = std::move(report.blockers);
  fail(c, "PodDisruptionBudgets that would stop a node drain forever: " +
              blocker_list(c.objects, kBlockersInMessage) +
              "; change or remove them, or make room for their pods, before upgrading");
}

// What was read for one review: the short lists as they came, the long
// ones as digests, and each read's failure ("" when it was read, or when an
// optional kind is not served).
struct ClusterReads {
  std::vector<std::vector<Json>> lists = std::vector<std::vector<Json>>(kReads);
  std::vector<std::string> failures = std::vector<std::string>(kReads);
  std::vector<Volume> single_replica;
  PodDigests pods;

  // "list X: why; list Y: why" for the failed reads among `reads` (all
  // when empty), "" when none failed.
  std::string failed(std::initializer_list<size_t> reads) const {
    std::string why;
    for (size_t r = 0; r < kReads; ++r) {
      const bool relevant = reads.size() == 0 || std::find(reads.begin(), reads.end(), r) != reads.end();
      if (relevant && !failures[r].empty()) why += (why.empty() ? "" : "; ") + failures[r];
    }
    return why;
  }
};

// The reads the checks that run need: upgrades always, the rest unless
// bypassed, skipped, or refused for their annotations anyway.
std::vector<size_t> reads_needed(const Bypasses &bypass) {
  std::vector<size_t> wanted = {kUpgrades, kUpgradePlans};
  if (bypass.skip_webhook || !bypass.error.empty()) return wanted;
  wanted.insert(wanted.end(), {kNodes, kVolumes});
  if (!bypass.skip_checks.count(UpgradeGuard::kKubeVirtPlacement)) wanted.push_back(kKubeVirts);
  if (!bypass.skip_checks.count(UpgradeGuard::kPodDisruptionBudgets)) {
    wanted.insert(wanted.end(), {kPods, kPdbs, kInstanceManagers});
  }
  std::sort(wanted.begin(), wanted.end());
  return wanted;
}

// All at once; volumes and pods, the long lists, digested as they come
// instead of held.
void read_cluster(const ClusterView &cluster, const UpgradeGuard::Namespaces &namespaces,
                  const Bypasses &bypass, Deadline deadline, ClusterReads &reads) {
  std::vector<ListQuery> all = queries(namespaces);
  all[kVolumes].sink = ListSink{[&](Json &&v) {
                                  if (auto vol = single_replica_volume(v))
                                    reads.single_replica.push_back(std::move(*vol));
                                },
                                [&] { reads.single_replica.clear(); }};
  all[kPods].sink = ListSink{[&](Json &&p) { reads.pods.add(p); }, [&] { reads.pods.clear(); }};
  const std::vector<size_t> wanted = reads_needed(bypass);
  std::vector<ListQuery> asked;
  asked.reserve(wanted.size());
  for (size_t r : wanted) asked.push_back(all[r]);
  std::vector<ListResult> answers = list_concurrently(cluster, asked, deadline);
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (answers[i].ok()) {
      reads.lists[wanted[i]] = std::move(answers[i].items);
    } else if (!(answers[i].not_served && optional_kind(wanted[i]))) {
      reads.failures[wanted[i]] = answers[i].error;
    }
  }
}

// Concurrent upgrades: a 409 naming them, or nothing.
std::optional<Decision> judge_concurrent_upgrades(UpgradeGuard::Evaluation &e, const ClusterReads &reads) {
  auto &c = check(e, UpgradeGuard::kConcurrentUpgrades);
  c.state = UpgradeGuard::CheckState::Passed;
  const auto running = upgrades_in_progress(reads.lists[kUpgrades], reads.lists[kUpgradePlans]);
  if (running.empty()) return std::nullopt;
  for (const auto &r : running) c.objects.push_back({r, "in progress"});
  fail(c,
       "cannot proceed until the upgrade in progress completes: " + capped_list(running, kBlockersInMessage));
  return Decision::deny(409, "Conflict", c.message);
}

// One refusal for every failing check, in the checks' order, so that the
// single-replica wording comes first as before; the warnings stay.
void refuse_for_failed_checks(UpgradeGuard::Evaluation &e) {
  std::string message;
  std::vector<StatusCause> causes;
  for (const auto &c : e.checks) {
    if (c.state != UpgradeGuard::CheckState::Failed) continue;
    message += (message.empty() ? "" : "; ") + c.message;
    causes.push_back({"FieldValueInvalid", c.message, ""});
  }
  if (message.empty()) return;
  Decision d = Decision::deny(422, "Invalid", message);
  d.causes = std::move(causes);
  d.warnings = std::move(e.decision.warnings);
  e.decision = std::move(d);
}

}  // namespace

const char *to_string(UpgradeGuard::CheckState state) {
  switch (state) {
    case UpgradeGuard::CheckState::Passed:
      return "passed";
    case UpgradeGuard::CheckState::Failed:
      return "failed";
    case UpgradeGuard::CheckState::Skipped:
      return "skipped";
    case UpgradeGuard::CheckState::NotRun:
      break;
  }
  return "not run";
}

PolicySpec UpgradeGuard::spec() {
  PolicySpec s;
  s.name = kName;
  s.type = PolicyType::Validating;
  s.summary =
      "refuse an upgrade that another is running beside, or that single-replica volumes, "
      "KubeVirt placement or PodDisruptionBudgets would hurt or stick";
  // Only starting an upgrade drains nodes; changing or deleting one does not.
  s.rules = {
      {{"CREATE"}, "harvesterhci.io", {"v1beta1"}, "upgrades", "Upgrade"},
      {{"CREATE"}, "management.harvesterhci.io", {"v1beta1"}, "upgradeplans", "UpgradePlan", "Cluster"}};
  s.options = {
      {"longhorn-namespace", "longhorn-system", "namespace of the Longhorn volumes and instance managers"},
      {"kubevirt-namespace", "harvester-system", "namespace of the KubeVirt CR"},
      {"upgrade-namespace", "harvester-system", "namespace of Harvester's v1 Upgrades"}};
  s.object_fields = {"/metadata/name", "/metadata/generateName", "/metadata/annotations"};
  s.old_object_fields = {};
  s.reads_user_info = false;
  s.reads_cluster = true;
  s.cluster_reads = {"list nodes",
                     "list pods",
                     "list poddisruptionbudgets.policy",
                     "list upgradeplans.management.harvesterhci.io",
                     "list volumes.longhorn.io in the Longhorn namespace",
                     "list instancemanagers.longhorn.io in the Longhorn namespace",
                     "list kubevirts.kubevirt.io in the KubeVirt namespace",
                     "list upgrades.harvesterhci.io in the upgrade namespace"};
  s.build = [](const PolicyConfig &config) -> std::unique_ptr<Policy> {
    const ClusterView &cluster = config.required_cluster();
    Namespaces ns{config.option("longhorn-namespace"), config.option("kubevirt-namespace"),
                  config.option("upgrade-namespace")};
    for (const auto &[flag, value] :
         {std::pair<const char *, const std::string &>{"longhorn-namespace", ns.longhorn},
          {"kubevirt-namespace", ns.kubevirt},
          {"upgrade-namespace", ns.upgrades}}) {
      if (value.empty()) throw std::invalid_argument("--" + std::string(flag) + " must not be empty");
    }
    return std::make_unique<UpgradeGuard>(cluster, std::move(ns));
  };
  return s;
}

UpgradeGuard::UpgradeGuard(const ClusterView &cluster, Namespaces namespaces)
    : cluster_(cluster), namespaces_(std::move(namespaces)) {}

// Called for what spec().rules match: Upgrades and UpgradePlans being created.
Decision UpgradeGuard::review(const AdmissionRequest &request) const {
  if (!request.object.is_object()) {
    return Decision::deny(400, "BadRequest",
                          std::string(kName) + ": the request carries no " + request.kind.kind + " object");
  }
  const Json &annotations = member_or_null(member_or_null(request.object, "metadata"), "annotations");
  return evaluate(annotations.is_object() ? annotations : Json::object(), request.deadline).decision;
}

UpgradeGuard::Evaluation UpgradeGuard::evaluate(const Json &annotations, Deadline deadline) const {
  Evaluation out;
  for (const char *name :
       {kConcurrentUpgrades, kSingleReplicaVolumes, kKubeVirtPlacement, kPodDisruptionBudgets}) {
    CheckResult c;
    c.name = name;
    out.checks.push_back(std::move(c));
  }
  // Annotations are judged after concurrent-upgrades, and not at all under
  // skipWebhook (as before it): an upgrade in progress is named first.
  const Bypasses bypass = read_bypasses(annotations);
  ClusterReads reads;
  read_cluster(cluster_, namespaces_, bypass, deadline, reads);
  // Fail closed: the guard protects data, so not knowing is a refusal.
  const auto unavailable = [&](const std::string &why) {
    out.decision =
        Decision::deny(503, "ServiceUnavailable", std::string(kName) + " could not read the cluster: " + why);
    return out;
  };

  // concurrent-upgrades first, as Harvester's own in-progress check; no
  // annotation bypasses it.
  if (auto why = reads.failed({kUpgrades, kUpgradePlans}); !why.empty()) return unavailable(why);
  if (auto conflict = judge_concurrent_upgrades(out, reads)) {
    out.decision = std::move(*conflict);
    return out;
  }
  const std::initializer_list<const char *> drain_checks = {kSingleReplicaVolumes, kKubeVirtPlacement,
                                                            kPodDisruptionBudgets};
  if (bypass.skip_webhook) {
    skip(out, drain_checks, std::string("bypassed by ") + kSkipWebhookAnnotation);
    out.decision =
        Decision::allow().warn(std::string(kName) + " bypassed: " + kSkipWebhookAnnotation + "=\"" +
                               bypass.skip_webhook_value + "\" (concurrent upgrades still checked)");
    return out;
  }
  if (!bypass.error.empty()) {
    out.decision = invalid(bypass.error);
    return out;
  }
  if (auto why = reads.failed({}); !why.empty()) return unavailable(why);
  out.nodes = reads.lists[kNodes].size();
  if (out.nodes == 1) {
    // Nothing is drained on a single node, as in Harvester.
    skip(out, drain_checks, "single-node cluster");
    out.decision = Decision::allow().warn(std::string(kName) +
                                          ": single-node cluster, single-replica volumes, KubeVirt placement "
                                          "and PodDisruptionBudgets not checked");
    return out;
  }
  judge_single_replica(out, std::move(reads.single_replica), bypass.skip_detached);
  for (const auto &name : skippable_checks()) {
    if (!bypass.skip_checks.count(name)) continue;
    skip(out, {name.c_str()}, std::string("skipped by ") + kSkipChecksAnnotation);
    out.decision.warn(std::string(kName) + ": check " + name + " skipped (" + kSkipChecksAnnotation + ")");
  }
  if (!bypass.skip_checks.count(kKubeVirtPlacement)) {
    judge_kubevirt_placement(out, reads.lists[kKubeVirts], reads.lists[kNodes]);
  }
  if (!bypass.skip_checks.count(kPodDisruptionBudgets)) {
    judge_pod_disruption_budgets(out, reads.lists, reads.pods, namespaces_.longhorn);
  }
  refuse_for_failed_checks(out);
  return out;
}

}  // namespace hci_admission::webhooks
