#include "csi_controller_placement.hpp"

#include <algorithm>

namespace hci_admission::webhooks {
namespace {

// The taints Rancher puts on RKE2 nodes that are control plane and etcd
// but not workers; the chart's own tolerations cover exactly these.
struct Taint {
  const char *key;
  const char *effect;
};
constexpr Taint kControlPlaneTaints[] = {
    {"node-role.kubernetes.io/control-plane", "NoSchedule"},
    {"node-role.kubernetes.io/etcd", "NoExecute"},
};

// A toleration's fields, read once for both taints.
struct Toleration {
  std::string_view key, op, value, effect;
  explicit Toleration(const JsonView &t) {
    const auto [k, o, v, e] = t.members({"key", "operator", "value", "effect"});
    key = k.string();
    op = o.string();
    value = v.string();
    effect = e.string();
    if (op.empty()) op = "Equal";
  }
};

// Kubernetes' toleration matching (k8s.io/api/core/v1 ToleratesTaint) for
// a taint with an empty value.
bool tolerates(const Toleration &t, const Taint &taint) {
  if (!t.effect.empty() && t.effect != taint.effect) return false;
  if (t.key.empty()) return t.op == "Exists";
  if (t.key != taint.key) return false;
  if (t.op == "Exists") return true;
  return t.op == "Equal" && t.value.empty();
}

bool empty_or_absent(const Json &obj, const char *key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() || (it->is_array() && it->empty());
}

Json exists(const std::string &label) { return {{"key", label}, {"operator", "Exists"}}; }

}  // namespace

PolicySpec CsiControllerPlacement::spec() {
  PolicySpec s;
  s.name = kName;
  s.type = PolicyType::Mutating;
  s.summary = "harvester-csi-driver controller pods only on control-plane nodes";
  // Pod placement cannot change after creation.
  s.rules = {{{"CREATE"}, "", {"v1"}, "pods", "Pod"}};
  s.options = {
      {"csi-controller-selector", "app.kubernetes.io/name=harvester-csi-driver,component=csi-controllers",
       "labels (key=value,...) that mark a CSI controller pod"},
      {"control-plane-labels",
       "node-role.kubernetes.io/control-plane,node-role.kubernetes.io/controlplane,"
       "node-role.kubernetes.io/master",
       "node labels any of which marks a control-plane node"},
  };
  s.object_fields = {"/metadata/name", "/metadata/generateName", "/metadata/labels", "/spec/affinity",
                     "/spec/tolerations"};
  s.old_object_fields = {};
  s.reads_views = true;
  s.reads_user_info = false;
  s.build = [](const PolicyConfig &config) -> std::unique_ptr<Policy> {
    Settings settings{LabelSelector::parse(config.option("csi-controller-selector")),
                      split_list(config.option("control-plane-labels"))};
    if (settings.control_plane_labels.empty()) {
      throw std::invalid_argument("--control-plane-labels needs at least one label");
    }
    return std::make_unique<CsiControllerPlacement>(std::move(settings));
  };
  return s;
}

CsiControllerPlacement::CsiControllerPlacement(Settings settings) : settings_(std::move(settings)) {
  for (const auto &label : settings_.control_plane_labels) {
    label_requirements_.push_back(exists(label));
    control_plane_terms_.push_back({{"matchExpressions", {exists(label)}}});
  }
  Json all_tolerations = Json::array();
  for (const Taint &taint : kControlPlaneTaints) {
    const Json toleration = {{"key", taint.key}, {"operator", "Exists"}, {"effect", taint.effect}};
    rendered_tolerations_.push_back(RenderedJson::of(toleration));
    all_tolerations.push_back(toleration);
  }
  rendered_all_tolerations_ = RenderedJson::of(all_tolerations);
  anti_affinity_ = {{"preferredDuringSchedulingIgnoredDuringExecution",
                     {{{"weight", 100},
                       {"podAffinityTerm",
                        {{"labelSelector", settings_.controller_selector.to_label_selector()},
                         {"topologyKey", "kubernetes.io/hostname"}}}}}}};
  // What a pod without affinity gets: the same steps from nothing.
  Json affinity = Json::object();
  confine_node_affinity(affinity);
  spread_replicas(affinity);
  rendered_affinity_ = RenderedJson::of(affinity);
}

// Called for what spec().rules match: Pods being created.
Decision CsiControllerPlacement::review(const AdmissionRequest &request) const {
  const JsonView pod = request.object_view;
  if (!pod.is_object()) {
    return Decision::allow().warn(std::string(kName) + ": the request carries no pod; left unchanged");
  }
  const auto [metadata, spec] = pod.members({"metadata", "spec"});
  if (!settings_.controller_selector.matches(metadata["labels"])) return Decision::allow();

  if (!spec.is_object()) {
    return Decision::allow().warn(std::string(kName) + ": pod has no spec; left unchanged");
  }
  Decision decision = Decision::allow();
  try {
    const auto [affinity, tolerations] = spec.members({"affinity", "tolerations"});
    place_on_control_plane(affinity, decision.patch);
    add_control_plane_tolerations(tolerations, decision.patch);
  } catch (const ShapeError &e) {
    return Decision::allow().warn(std::string(kName) + ": " + e.what() + "; left unchanged");
  }
  return decision;
}

// The pod's affinity, confined and spread. Without one (the chart's own
// pods before 0.1.23) the whole answer is a constant, added as written
// once; otherwise the affinity is changed in a copy and the difference
// patched.
void CsiControllerPlacement::place_on_control_plane(const JsonView &affinity, JsonPatch &patch) const {
  if (!affinity.exists() || affinity.is_null()) {
    patch.add("/spec/affinity", rendered_affinity_);
    return;
  }
  if (!affinity.is_object()) throw ShapeError("spec.affinity is not an object");
  const Json before = affinity.to_json();
  Json desired = before;
  confine_node_affinity(desired);
  spread_replicas(desired);
  patch.diff("/spec/affinity", before, std::move(desired));
}

bool CsiControllerPlacement::term_requires_control_plane(const Json &term) const {
  const Json *exprs = find_member(term, "matchExpressions", Json::value_t::array, "nodeSelectorTerm");
  if (exprs == nullptr) return false;
  const auto &labels = settings_.control_plane_labels;
  return std::any_of(exprs->begin(), exprs->end(), [&](const Json &e) {
    if (!e.is_object()) return false;
    const std::string key = string_member(e, "key", "matchExpression");
    const std::string op = string_member(e, "operator", "matchExpression");
    // In implies the label exists just as Exists does.
    return (op == "Exists" || op == "In") && std::find(labels.begin(), labels.end(), key) != labels.end();
  });
}

void CsiControllerPlacement::confine_node_affinity(Json &affinity) const {
  const std::string where = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution";
  Json &node = ensure_object(affinity, "nodeAffinity", "spec.affinity");
  Json &required =
      ensure_object(node, "requiredDuringSchedulingIgnoredDuringExecution", "spec.affinity.nodeAffinity");
  Json &terms = ensure_array(required, "nodeSelectorTerms", where);
  const auto &labels = settings_.control_plane_labels;
  if (terms.empty()) {
    terms = control_plane_terms_;
    return;
  }
  // Terms are ORed and the expressions in a term ANDed, so "any control-
  // plane label" is added to a term by splitting it into one copy per label.
  const size_t original_terms = terms.size();
  for (size_t i = 0; i < original_terms; ++i) {
    Json &term = terms[i];
    if (!term.is_object()) throw ShapeError(where + ".nodeSelectorTerms[] is not an object");
    // An empty term matches no node, so it never places the pod anywhere.
    if (empty_or_absent(term, "matchExpressions") && empty_or_absent(term, "matchFields")) continue;
    if (term_requires_control_plane(term)) continue;
    const Json original = term;
    for (size_t l = 0; l < labels.size(); ++l) {
      if (l == 0) {
        ensure_array(term, "matchExpressions", where).push_back(label_requirements_[0]);
      } else {
        Json copy = original;
        ensure_array(copy, "matchExpressions", where).push_back(label_requirements_[l]);
        terms.push_back(std::move(copy));
      }
    }
  }
}

// Tolerations are only ever appended, so each missing one is an append of
// a constant; with none at all, one add of the whole list.
void CsiControllerPlacement::add_control_plane_tolerations(const JsonView &tolerations,
                                                           JsonPatch &patch) const {
  if (!tolerations.exists() || tolerations.is_null()) {
    patch.add("/spec/tolerations", rendered_all_tolerations_);
    return;
  }
  if (!tolerations.is_array()) throw ShapeError("spec.tolerations is not an array");
  bool tolerated[std::size(kControlPlaneTaints)] = {};
  for (const JsonView t : tolerations) {
    if (!t.is_object()) continue;
    const Toleration toleration(t);
    for (size_t i = 0; i < std::size(kControlPlaneTaints); ++i) {
      tolerated[i] = tolerated[i] || tolerates(toleration, kControlPlaneTaints[i]);
    }
  }
  for (size_t i = 0; i < std::size(kControlPlaneTaints); ++i) {
    if (!tolerated[i]) patch.add("/spec/tolerations/-", rendered_tolerations_[i]);
  }
}

void CsiControllerPlacement::spread_replicas(Json &affinity) const {
  Json &anti = ensure_object(affinity, "podAntiAffinity", "spec.affinity");
  if (!empty_or_absent(anti, "requiredDuringSchedulingIgnoredDuringExecution") ||
      !empty_or_absent(anti, "preferredDuringSchedulingIgnoredDuringExecution")) {
    return;
  }
  Json &preferred =
      ensure_array(anti, "preferredDuringSchedulingIgnoredDuringExecution", "spec.affinity.podAntiAffinity");
  for (const auto &term : anti_affinity_["preferredDuringSchedulingIgnoredDuringExecution"]) {
    preferred.push_back(term);
  }
}

}  // namespace hci_admission::webhooks
