#include "node_placement.hpp"

#include "policy_util.hpp"

#include <algorithm>
#include <cstdlib>

namespace hci_admission::webhooks {
namespace {

bool listed(const Json &values, const std::string &value) {
  return values.is_array() &&
         std::any_of(values.begin(), values.end(), [&](const Json &v) { return text_of(v) == value; });
}

// One requirement of a node selector term; `value` is null when the node
// has no such label.
bool requirement_holds(const Json &requirement, const Json &value) {
  const std::string op = text_of(member_or_null(requirement, "operator"));
  const Json &values = member_or_null(requirement, "values");
  if (op == "Exists") return value.is_string();
  if (op == "DoesNotExist") return !value.is_string();
  if (op == "In") return value.is_string() && listed(values, value.get<std::string>());
  if (op == "NotIn") return !value.is_string() || !listed(values, value.get<std::string>());
  if ((op == "Gt" || op == "Lt") && value.is_string() && values.is_array() && values.size() == 1) {
    // Both must be whole integers; an empty label is no number (as the
    // scheduler's strconv.ParseInt). `end` points into `wanted`, kept alive.
    const JsonString &label = value.get_ref<const JsonString &>();
    const std::string wanted = text_of(values[0]);
    if (label.empty() || wanted.empty()) return false;
    char *end = nullptr;
    const long long have = std::strtoll(label.c_str(), &end, 10);
    if (*end != '\0') return false;
    const long long want = std::strtoll(wanted.c_str(), &end, 10);
    if (*end != '\0') return false;
    return op == "Gt" ? have > want : have < want;
  }
  return false;  // an unknown operator selects nothing, as the scheduler's parser refuses it
}

// A node selector term: every expression on labels and every field
// (metadata.name only) holds. An empty term selects no node.
bool term_holds(const Json &term, const Json &node) {
  const Json &expressions = member_or_null(term, "matchExpressions");
  const Json &fields = member_or_null(term, "matchFields");
  const bool has_expressions = expressions.is_array() && !expressions.empty();
  const bool has_fields = fields.is_array() && !fields.empty();
  if (!has_expressions && !has_fields) return false;
  const Json &labels = member_or_null(member_or_null(node, "metadata"), "labels");
  const Json &name = member_or_null(member_or_null(node, "metadata"), "name");
  const auto label_holds = [&](const Json &e) {
    return requirement_holds(e, member_or_null(labels, text_of(member_or_null(e, "key")).c_str()));
  };
  const auto field_holds = [&](const Json &f) {
    return text_of(member_or_null(f, "key")) == "metadata.name" && requirement_holds(f, name);
  };
  return (!has_expressions || std::all_of(expressions.begin(), expressions.end(), label_holds)) &&
         (!has_fields || std::all_of(fields.begin(), fields.end(), field_holds));
}

bool affinity_holds(const Json &pod_spec, const Json &node) {
  const Json &required = member_or_null(member_or_null(member_or_null(pod_spec, "affinity"), "nodeAffinity"),
                                        "requiredDuringSchedulingIgnoredDuringExecution");
  if (required.is_null()) return true;
  const Json &terms = member_or_null(required, "nodeSelectorTerms");
  return terms.is_array() &&
         std::any_of(terms.begin(), terms.end(), [&](const Json &t) { return term_holds(t, node); });
}

bool node_selector_holds(const Json &pod_spec, const Json &node) {
  const Json &selector = member_or_null(pod_spec, "nodeSelector");
  if (!selector.is_object()) return true;
  const Json &labels = member_or_null(member_or_null(node, "metadata"), "labels");
  for (auto it = selector.begin(); it != selector.end(); ++it) {
    const Json &have = member_or_null(labels, it.key().c_str());
    if (!have.is_string() || text_of(have) != text_of(*it)) return false;
  }
  return true;
}

bool tolerates(const Json &toleration, const std::string &key, const std::string &value,
               const std::string &effect) {
  const std::string t_key = text_of(member_or_null(toleration, "key"));
  const std::string t_effect = text_of(member_or_null(toleration, "effect"));
  const std::string op = member_or_null(toleration, "operator").is_string()
                             ? text_of(member_or_null(toleration, "operator"))
                             : "Equal";
  if (!t_effect.empty() && t_effect != effect) return false;
  if (t_key.empty()) return op == "Exists";  // an empty key with Exists tolerates every taint
  if (t_key != key) return false;
  return op == "Exists" || (op == "Equal" && text_of(member_or_null(toleration, "value")) == value);
}

bool tolerated(const Json &pod_spec, const std::string &key, const std::string &value,
               const std::string &effect) {
  const Json &tolerations = member_or_null(pod_spec, "tolerations");
  return tolerations.is_array() && std::any_of(tolerations.begin(), tolerations.end(), [&](const Json &t) {
           return tolerates(t, key, value, effect);
         });
}

bool taints_tolerated(const Json &pod_spec, const Json &node) {
  const Json &taints = member_or_null(member_or_null(node, "spec"), "taints");
  if (!taints.is_array()) return true;
  return std::all_of(taints.begin(), taints.end(), [&](const Json &taint) {
    const std::string effect = text_of(member_or_null(taint, "effect"));
    if (effect != "NoSchedule" && effect != "NoExecute") return true;  // PreferNoSchedule only prefers
    return tolerated(pod_spec, text_of(member_or_null(taint, "key")), text_of(member_or_null(taint, "value")),
                     effect);
  });
}

}  // namespace

bool pod_fits_node(const Json &pod_spec, const Json &node) {
  if (member_or_null(member_or_null(node, "spec"), "unschedulable") == true &&
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

std::vector<std::string> node_names_fitting(const Json &pod_spec, const std::vector<Json> &nodes) {
  std::vector<std::string> out;
  for (const auto &n : nodes) {
    if (pod_fits_node(pod_spec, n))
      out.push_back(text_of(member_or_null(member_or_null(n, "metadata"), "name")));
  }
  return out;
}

}  // namespace hci_admission::webhooks
