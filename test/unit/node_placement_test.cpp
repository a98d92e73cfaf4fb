// Pod placement against a table of nodes: labels, taints, cordons, the
// witness node, and the KubeVirt shape behind harvester/harvester #7647.
#include "node_placement.hpp"

#include <catch2/catch.hpp>

using namespace hci_admission;
using namespace hci_admission::webhooks;

namespace {

// A one-element array is written Json::array({x}): `{x}` with x a Json is
// a copy of x under clang and an array under GCC (CWG 2137).
Json node(const std::string &name, Json labels, Json taints = Json::array(), bool cordoned = false) {
  labels["kubernetes.io/hostname"] = name;
  Json n = {{"metadata", {{"name", name}, {"labels", std::move(labels)}}},
            {"spec", {{"taints", std::move(taints)}}}};
  if (cordoned) n["spec"]["unschedulable"] = true;
  return n;
}

Json taint(const std::string &key, const std::string &value, const std::string &effect) {
  return {{"key", key}, {"value", value}, {"effect", effect}};
}

Json required(Json terms) {
  return {
      {"nodeAffinity", {{"requiredDuringSchedulingIgnoredDuringExecution", {{"nodeSelectorTerms", terms}}}}}};
}

Json exists(const std::string &key) { return {{"key", key}, {"operator", "Exists"}}; }

}  // namespace

TEST_CASE("pods fit the nodes kube-scheduler would give them", "[placement]") {
  const std::vector<Json> nodes = {
      node("cp-1", {{"node-role.kubernetes.io/control-plane", "true"}},
           Json::array({taint("node-role.kubernetes.io/control-plane", "true", "NoSchedule")})),
      node("worker-1", {{"gpu-count", "4"}}, Json::array({taint("dedicated", "gpu", "PreferNoSchedule")})),
      node("worker-2", Json::object(), Json::array(), true),
      node("witness", {{"node-role.harvesterhci.io/witness", "true"}},
           Json::array({taint("node-role.kubernetes.io/etcd", "true", "NoExecute")})),
  };
  const Json tolerate_cp = {
      {"key", "node-role.kubernetes.io/control-plane"}, {"operator", "Exists"}, {"effect", "NoSchedule"}};
  struct Row {
    const char *what;
    Json spec;
    size_t fits;
  };
  const std::vector<Row> rows = {
      {"a plain pod: only the untainted, uncordoned worker", Json::object(), 1},
      {"KubeVirt >= 1.3 with nodePlacement nil (#7647): the one control-plane node",
       {{"affinity",
         required({{{"matchExpressions", Json::array({exists("node-role.kubernetes.io/control-plane")})}},
                   {{"matchExpressions", Json::array({exists("node-role.kubernetes.io/master")})}}})},
        {"tolerations", Json::array({tolerate_cp})}},
       1},
      // kube-scheduler's NodeUnschedulable plugin asks whether the pod
      // tolerates node.kubernetes.io/unschedulable:NoSchedule, which an
      // empty key with Exists does.
      {"tolerating everything: every node, the cordoned one too",
       {{"tolerations", {{{"operator", "Exists"}}}}},
       4},
      {"tolerating only the cordon: the two workers",
       {{"tolerations",
         {{{"key", "node.kubernetes.io/unschedulable"}, {"operator", "Exists"}, {"effect", "NoSchedule"}}}}},
       2},
      {"nodeSelector", {{"nodeSelector", {{"kubernetes.io/hostname", "worker-1"}}}}, 1},
      {"nodeSelector on a label no node has", {{"nodeSelector", {{"zone", "a"}}}}, 0},
      {"matchFields on metadata.name, with the control-plane toleration",
       {{"affinity",
         required({{{"matchFields",
                     {{{"key", "metadata.name"}, {"operator", "In"}, {"values", {"worker-1", "cp-1"}}}}}}})},
        {"tolerations", Json::array({tolerate_cp})}},
       2},
      {"Gt on a numeric label",
       {{"affinity", required({{{"matchExpressions",
                                 {{{"key", "gpu-count"}, {"operator", "Gt"}, {"values", {"2"}}}}}}})}},
       1},
      {"NotIn holds on nodes without the label (all but worker-1)",
       {{"affinity", required({{{"matchExpressions",
                                 {{{"key", "gpu-count"}, {"operator", "NotIn"}, {"values", {"4"}}}}}}})},
        {"tolerations", {{{"operator", "Exists"}}}}},
       3},
      {"an empty term selects no node", {{"affinity", required(Json::array({Json::object()}))}}, 0},
      {"a toleration with the wrong value does not tolerate Equal",
       {{"tolerations",
         {{{"key", "node-role.kubernetes.io/etcd"},
           {"operator", "Equal"},
           {"value", "false"},
           {"effect", "NoExecute"}}}},
        {"nodeSelector", {{"node-role.harvesterhci.io/witness", "true"}}}},
       0},
      {"and with the right value it does",
       {{"tolerations",
         {{{"key", "node-role.kubernetes.io/etcd"}, {"value", "true"}, {"effect", "NoExecute"}}}},
        {"nodeSelector", {{"node-role.harvesterhci.io/witness", "true"}}}},
       1},
  };
  for (const auto &row : rows) {
    INFO(row.what);
    CHECK(nodes_fitting(row.spec, nodes) == row.fits);
  }
}
