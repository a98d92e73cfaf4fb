#include "upgrade_guard.hpp"

#include "policy_util.hpp"

#include <algorithm>

namespace hci_admission::webhooks {
namespace {

// Harvester's own wording (pkg/webhook/resources/upgrade/validator.go), so
// that runbooks matching on it keep working.
constexpr const char *kAnyMessage =
    "Following PVCs with single-replica volume, even the volume is detached, upgrade may have potential data "
    "integrity concerns: ";
constexpr const char *kActiveMessage =
    "Following PVCs with active single-replica volume, please consider shutdown the corresponding workload "
    "before upgrade: ";
// A denial names this many PVCs; `hci-admission precheck` lists them all.
constexpr size_t kNamesInMessage = 50;

Decision invalid(std::string message) {
  Decision d = Decision::deny(422, "Invalid", message);
  d.causes.push_back({"FieldValueInvalid", std::move(message), ""});
  return d;
}

std::string name_list(const std::vector<UpgradeGuard::Volume> &volumes, size_t limit) {
  std::string out;
  for (size_t i = 0; i < volumes.size() && i < limit; ++i) out += (i ? ", " : "") + volumes[i].pvc;
  if (volumes.size() > limit) out += ", and " + std::to_string(volumes.size() - limit) + " more";
  return out;
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

std::string text_at(const Json &obj, std::initializer_list<const char *> path) {
  const Json *cur = &obj;
  for (const char *key : path) {
    if (!cur->is_object()) return "";
    auto it = cur->find(key);
    if (it == cur->end()) return "";
    cur = &*it;
  }
  return cur->is_string() ? cur->get<std::string>() : "";
}

}  // namespace

PolicySpec UpgradeGuard::spec() {
  PolicySpec s;
  s.name = kName;
  s.type = PolicyType::Validating;
  s.summary = "refuse while single-replica Longhorn volumes exist";
  // Only starting an upgrade drains nodes; changing or deleting one does not.
  s.rules = {{{"CREATE"}, "harvesterhci.io", {"v1beta1"}, "upgrades", "Upgrade"}};
  s.options = {{"longhorn-namespace", "longhorn-system", "namespace of the Longhorn volumes"}};
  s.object_fields = {"/metadata/name", "/metadata/generateName", "/metadata/annotations"};
  s.old_object_fields = {};
  s.reads_cluster = true;
  s.cluster_reads = {"list nodes", "list volumes.longhorn.io in the Longhorn namespace"};
  s.build = [](const PolicyConfig &config) -> std::unique_ptr<Policy> {
    if (config.cluster() == nullptr) {
      throw std::invalid_argument(
          "needs cluster access: --kubeconfig, in-cluster credentials, or --cluster-state for offline use");
    }
    const std::string ns = config.option("longhorn-namespace");
    if (ns.empty()) throw std::invalid_argument("--longhorn-namespace must not be empty");
    return std::make_unique<UpgradeGuard>(*config.cluster(), ns);
  };
  return s;
}

UpgradeGuard::UpgradeGuard(const ClusterView &cluster, std::string longhorn_namespace)
    : cluster_(cluster), longhorn_namespace_(std::move(longhorn_namespace)) {}

// Called for what spec().rules match: Upgrades being created.
Decision UpgradeGuard::review(const AdmissionRequest &request) const {
  if (!request.object.is_object()) {
    return Decision::deny(400, "BadRequest", std::string(kName) + ": the request carries no Upgrade object");
  }
  Json annotations = Json::object();
  if (auto meta = request.object.find("metadata"); meta != request.object.end() && meta->is_object()) {
    if (auto a = meta->find("annotations"); a != meta->end() && a->is_object()) annotations = *a;
  }
  return evaluate(annotations, request.deadline).decision;
}

UpgradeGuard::Evaluation UpgradeGuard::evaluate(const Json &annotations, Deadline deadline) const {
  Evaluation out;
  const Json upgrade = {{"metadata", {{"annotations", annotations}}}};

  std::string skip_webhook;
  if (read_bool_annotation(upgrade, kSkipWebhookAnnotation, &skip_webhook) == BoolAnnotation::True) {
    out.decision = Decision::allow().warn(std::string(kName) + " bypassed: " + kSkipWebhookAnnotation +
                                          "=\"" + skip_webhook + "\"");
    return out;
  }
  std::string skip_value;
  const BoolAnnotation skip = read_bool_annotation(upgrade, kSkipDetachedAnnotation, &skip_value);
  if (skip == BoolAnnotation::Invalid) {
    out.decision =
        invalid("annotation " + std::string(kSkipDetachedAnnotation) + " has value \"" + skip_value +
                "\"; accepted values are \"true\" and \"false\" (any case), or leave it out");
    return out;
  }
  const bool skip_detached = skip == BoolAnnotation::True;

  try {
    out.nodes = cluster_.list({"", "v1", "nodes", "Node", ""}, {"/metadata/name"}, deadline).size();
    if (out.nodes == 1) {
      // Nothing is drained on a single node, as in Harvester.
      out.decision = Decision::allow().warn(std::string(kName) +
                                            ": single-node cluster, single-replica volumes not checked");
      return out;
    }
    const auto volumes =
        cluster_.list({"longhorn.io", "v1beta2", "volumes", "Volume", longhorn_namespace_},
                      {"/metadata/name", "/spec/numberOfReplicas", "/status/state",
                       "/status/kubernetesStatus/namespace", "/status/kubernetesStatus/pvcName"},
                      deadline);
    for (const auto &v : volumes) {
      const Json *spec = v.is_object() && v.contains("spec") ? &v["spec"] : nullptr;
      if (spec == nullptr || !spec->is_object()) continue;
      auto replicas = spec->find("numberOfReplicas");
      if (replicas == spec->end() || !replicas->is_number_integer() || replicas->get<int64_t>() != 1)
        continue;
      Volume vol;
      vol.name = text_at(v, {"metadata", "name"});
      vol.state = text_at(v, {"status", "state"});
      vol.active = vol.state == "creating" || vol.state == "attached" || vol.state == "attaching";
      const std::string pvc = text_at(v, {"status", "kubernetesStatus", "pvcName"});
      const std::string ns = text_at(v, {"status", "kubernetesStatus", "namespace"});
      vol.pvc = pvc.empty() ? vol.name : ns;
      if (!pvc.empty()) vol.pvc.append("/").append(pvc);
      out.single_replica.push_back(std::move(vol));
    }
  } catch (const ClusterReadError &e) {
    // Fail closed: the guard protects data, so not knowing is a refusal.
    out.decision = Decision::deny(503, "ServiceUnavailable",
                                  std::string(kName) + " could not read the cluster: " + e.what());
    return out;
  }
  std::sort(out.single_replica.begin(), out.single_replica.end(), [](const Volume &a, const Volume &b) {
    return a.pvc < b.pvc || (a.pvc == b.pvc && a.name < b.name);
  });

  if (!skip_detached) {
    out.offending = out.single_replica;
    out.decision = out.offending.empty() ? Decision::allow()
                                         : invalid(kAnyMessage + name_list(out.offending, kNamesInMessage));
    return out;
  }
  std::vector<Volume> detached;
  for (const auto &v : out.single_replica) (v.active ? out.offending : detached).push_back(v);
  if (!out.offending.empty()) {
    out.decision = invalid(kActiveMessage + name_list(out.offending, kNamesInMessage));
    return out;
  }
  out.decision = Decision::allow();
  if (!detached.empty()) {
    warn_listing(out.decision,
                 "single-replica volumes not attached, allowed by " + std::string(kSkipDetachedAnnotation),
                 detached);
  }
  return out;
}

}  // namespace hci_admission::webhooks
