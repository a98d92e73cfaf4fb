// Where a pod may be scheduled, as kube-scheduler decides it for the parts
// that drain blockers turn on (domain.md §7 rule 3): nodeSelector, required
// node affinity (matchExpressions on labels, matchFields on metadata.name),
// taints with NoSchedule/NoExecute against the pod's tolerations, and
// cordoned nodes.
#pragma once

#include "hci_admission/json/json.hpp"

#include <string>
#include <vector>

namespace hci_admission::webhooks {

// `pod_spec` is a Pod's spec (or a pod template's); `node` a Node object.
// A cordoned node (spec.unschedulable) takes no new pod unless the pod
// tolerates node.kubernetes.io/unschedulable.
bool pod_fits_node(const Json &pod_spec, const Json &node);

// How many of `nodes` the pod may be scheduled on.
size_t nodes_fitting(const Json &pod_spec, const std::vector<Json> &nodes);
// Their names (metadata.name), in the order of `nodes`.
std::vector<std::string> node_names_fitting(const Json &pod_spec, const std::vector<Json> &nodes);

}  // namespace hci_admission::webhooks
