#include "node_placement.hpp"

#include <algorithm>
#include <cstdlib>

namespace hci_admission::webhooks {
namespace {

const Json &at(const Json &parent, const char *key) {
  static const Json kNull;
  if (!parent.is_object()) return kNull;
  const auto it = parent.find(key);
  return it == parent.end() ? kNull : *it;
}

std::string text(const Json &v) { return v.is_string() ? v.get<std::string>() : ""; }

bool listed(const Json &values, const std::string &value) {
  return values.is_array() &&
         std::any_of(values.begin(), values.end(), [&](const Json &v) { return text(v) == value; });
}

// One requirement of a node selector term; `value` is null when the node
// has no such label.
bool requirement_holds(const Json &requirement, const Json &value) {
  const std::string op = text(at(requirement, "operator"));
  const Json &values = at(requirement, "values");
  if (op == "Exists") return value.is_string();
  if (op == "DoesNotExist") return !value.is_string();
  if (op == "In") return value.is_string() && listed(values, value.get<std::string>());
  if (op == "NotIn") return !value.is_string() || !listed(values, value.get<std::string>());
  if ((op == "Gt" || op == "Lt") && value.is_string() && values.is_array() && values.size() == 1) {
    char *end = nullptr;
    const long long have = std::strtoll(value.get_ref<const std::string &>().c_str(), &end, 10);
    if (end == nullptr || *end != '\0') return false;
    const long long want = std::strtoll(text(values[0]).c_str(), &end, 10);
    if (*end != '\0') return false;
    return op == "Gt" ? have > want : have < want;
  }
  return false;  // an unknown operator selects nothing, as the scheduler's parser refuses it
}

// A node selector term: every expression on labels and every field
// (metadata.name only) holds. An empty term selects no node.
bool term_holds(const Json &term, const Json &node) {
  const Json &expressions = at(term, "matchExpressions");
  const Json &fields = at(term, "matchFields");
  const bool has_expressions = expressions.is_array() && !expressions.empty();
  const bool has_fields = fields.is_array() && !fields.empty();
  if (!has_expressions && !has_fields) return false;
  const Json &labels = at(at(node, "metadata"), "labels");
  const Json &name = at(at(node, "metadata"), "name");
  const auto label_holds = [&](const Json &e) {
    return requirement_holds(e, at(labels, text(at(e, "key")).c_str()));
  };
  const auto field_holds = [&](const Json &f) {
    return text(at(f, "key")) == "metadata.name" && requirement_holds(f, name);
  };
  return (!has_expressions || std::all_of(expressions.begin(), expressions.end(), label_holds)) &&
         (!has_fields || std::all_of(fields.begin(), fields.end(), field_holds));
}

bool affinity_holds(const Json &pod_spec, const Json &node) {
  const Json &required =
      at(at(at(pod_spec, "affinity"), "nodeAffinity"), "requiredDuringSchedulingIgnoredDuringExecution");
  if (required.is_null()) return true;
  const Json &terms = at(required, "nodeSelectorTerms");
  return terms.is_array() &&
         std::any_of(terms.begin(), terms.end(), [&](const Json &t) { return term_holds(t, node); });
}

bool node_selector_holds(const Json &pod_spec, const Json &node) {
  const Json &selector = at(pod_spec, "nodeSelector");
  if (!selector.is_object()) return true;
  const Json &labels = at(at(node, "metadata"), "labels");
  for (auto it = selector.begin(); it != selector.end(); ++it) {
    const Json &have = at(labels, it.key().c_str());
    if (!have.is_string() || text(have) != text(*it)) return false;
  }
  return true;
}

bool tolerates(const Json &toleration, const std::string &key, const std::string &value,
               const std::string &effect) {
  const std::string t_key = text(at(toleration, "key"));
  const std::string t_effect = text(at(toleration, "effect"));
  const std::string op = at(toleration, "operator").is_string() ? text(at(toleration, "operator")) : "Equal";
  if (!t_effect.empty() && t_effect != effect) return false;
  if (t_key.empty()) return op == "Exists";  // an empty key with Exists tolerates every taint
  if (t_key != key) return false;
  return op == "Exists" || (op == "Equal" && text(at(toleration, "value")) == value);
}

bool tolerated(const Json &pod_spec, const std::string &key, const std::string &value,
               const std::string &effect) {
  const Json &tolerations = at(pod_spec, "tolerations");
  return tolerations.is_array() && std::any_of(tolerations.begin(), tolerations.end(), [&](const Json &t) {
           return tolerates(t, key, value, effect);
         });
}

bool taints_tolerated(const Json &pod_spec, const Json &node) {
  const Json &taints = at(at(node, "spec"), "taints");
  if (!taints.is_array()) return true;
  return std::all_of(taints.begin(), taints.end(), [&](const Json &taint) {
    const std::string effect = text(at(taint, "effect"));
    if (effect != "NoSchedule" && effect != "NoExecute") return true;  // PreferNoSchedule only prefers
    return tolerated(pod_spec, text(at(taint, "key")), text(at(taint, "value")), effect);
  });
}

}  // namespace

bool pod_fits_node(const Json &pod_spec, const Json &node) {
  if (at(at(node, "spec"), "unschedulable") == true &&
      !tolerated(pod_spec, "node.kubernetes.io/unschedulable", "", "NoSchedule")) {
    return false;
  }
  return node_selector_holds(pod_spec, node) && affinity_holds(pod_spec, node) &&
         taints_tolerated(pod_spec, node);
}

size_t nodes_fitting(const Json &pod_spec, const std::vector<Json> &nodes) {
  return static_cast<size_t>(
      std::count_if(nodes.begin(), nodes.end(), [&](const Json &n) { return pod_fits_node(pod_spec, n); }));
}

}  // namespace hci_admission::webhooks
