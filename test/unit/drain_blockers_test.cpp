// Rule 1 of domain.md §7 and its exceptions, row by row.
#include "drain_blockers.hpp"

#include <catch2/catch.hpp>

using namespace hci_admission;
using namespace hci_admission::webhooks;

namespace {

Json pdb(Json spec, Json status = Json::object()) {
  return {{"metadata", {{"name", "p"}, {"namespace", "ns"}}},
          {"spec", std::move(spec)},
          {"status", std::move(status)}};
}

}  // namespace

TEST_CASE("a PDB that can never allow a disruption", "[drain]") {
  struct Row {
    const char *what;
    Json pdb;
    size_t pods;
    bool blocks;
  };
  const Json sync_failed = {
      {"conditions", {{{"type", "DisruptionAllowed"}, {"status", "False"}, {"reason", "SyncFailed"}}}}};
  const Json insufficient = {
      {"conditions", {{{"type", "DisruptionAllowed"}, {"status", "False"}, {"reason", "InsufficientPods"}}}}};
  const std::vector<Row> rows = {
      {"minAvailable equal to the pods", pdb({{"minAvailable", 2}}), 2, true},
      {"minAvailable above the pods", pdb({{"minAvailable", 3}}), 2, true},
      {"minAvailable below the pods", pdb({{"minAvailable", 1}}), 2, false},
      {"minAvailable 100%", pdb({{"minAvailable", "100%"}}), 3, true},
      {"minAvailable 50%", pdb({{"minAvailable", "50%"}}), 3, false},
      {"maxUnavailable 0", pdb({{"maxUnavailable", 0}}), 3, true},
      {"maxUnavailable 0%", pdb({{"maxUnavailable", "0%"}}), 3, true},
      {"maxUnavailable 1", pdb({{"maxUnavailable", 1}}), 3, false},
      {"SyncFailed", pdb({{"maxUnavailable", 1}}, sync_failed), 1, true},
      {"another reason is not SyncFailed", pdb({{"minAvailable", 1}}, insufficient), 3, false},
      {"no spec at all", Json::object(), 1, false},
  };
  for (const auto &row : rows) {
    INFO(row.what);
    CHECK(never_allows_disruption(row.pdb, row.pods).has_value() == row.blocks);
  }
  CHECK(*never_allows_disruption(pdb({{"minAvailable", 2}}), 2) == "minAvailable 2 of 2 pods");
}

TEST_CASE("Longhorn instance-manager and KubeVirt evacuation PDBs are told apart", "[drain]") {
  const Json labels = {{"longhorn.io/component", "instance-manager"}, {"longhorn.io/node", "node-1"}};
  Json im = {{"metadata", {{"name", "instance-manager-abc"}, {"namespace", "longhorn-system"}}}};
  im["spec"]["minAvailable"] = 1;
  im["spec"]["selector"]["matchLabels"] = labels;
  CHECK(is_longhorn_instance_manager_pdb(im, "longhorn-system"));
  CHECK_FALSE(is_longhorn_instance_manager_pdb(im, "other-namespace"));
  im["spec"]["selector"]["matchLabels"]["longhorn.io/component"] = "manager";
  CHECK_FALSE(is_longhorn_instance_manager_pdb(im, "longhorn-system"));
  const Json evacuation = {{"metadata", {{"name", "kubevirt-migration-pdb-kubevirt-evacuation-x7k"}}}};
  const Json virt_api = {{"metadata", {{"name", "virt-api-pdb"}}}};
  CHECK(is_kubevirt_evacuation_pdb(evacuation));
  CHECK_FALSE(is_kubevirt_evacuation_pdb(virt_api));
  CHECK_FALSE(is_kubevirt_evacuation_pdb(Json::array()));
}

// Checks 3 and 2 over whole lists of objects: pod_disruption_budget_blockers
// (rules 1-3 of domain.md §7 and their exceptions) and
// kubevirt_placement_blockers (#7647).
namespace {

const std::string kLonghorn = "longhorn-system";

// A pod the drain would evict unless told otherwise: owned by a ReplicaSet,
// with a Ready condition.
Json pod(const std::string &ns, const std::string &name, Json labels, const std::string &phase = "Running",
         bool ready = true, Json spec = Json::object()) {
  Json p;
  p["metadata"]["name"] = name;
  p["metadata"]["namespace"] = ns;
  p["metadata"]["labels"] = std::move(labels);
  p["metadata"]["ownerReferences"] = Json::array({{{"kind", "ReplicaSet"}, {"name", name + "-rs"}}});
  p["spec"] = std::move(spec);
  p["status"]["phase"] = phase;
  p["status"]["conditions"] = Json::array({{{"type", "Ready"}, {"status", ready ? "True" : "False"}}});
  return p;
}

Json owned_by(Json p, const std::string &kind) {
  p["metadata"]["ownerReferences"] = Json::array({{{"kind", kind}, {"name", "owner"}}});
  return p;
}

Json terminating(Json p) {
  p["metadata"]["deletionTimestamp"] = "2024-05-01T10:00:00Z";
  return p;
}

// A selector to leave out of the PDB altogether.
Json absent() { return Json(Json::value_t::discarded); }

// `limits` carries minAvailable and/or maxUnavailable; `desired_healthy`
// and `conditions` go to the status when not null.
Json budget(const std::string &ns, const std::string &name, Json selector, Json limits,
            Json desired_healthy = nullptr, Json conditions = nullptr) {
  Json b;
  b["metadata"]["name"] = name;
  b["metadata"]["namespace"] = ns;
  b["spec"] = limits.is_object() ? std::move(limits) : Json::object();
  if (!selector.is_discarded()) b["spec"]["selector"] = std::move(selector);
  b["status"] = Json::object();
  if (!desired_healthy.is_null()) b["status"]["desiredHealthy"] = std::move(desired_healthy);
  if (!conditions.is_null()) b["status"]["conditions"] = std::move(conditions);
  return b;
}

Json match_labels(Json labels) { return {{"matchLabels", std::move(labels)}}; }

Json expression(const std::string &key, const std::string &op, Json values = nullptr) {
  Json e = {{"key", key}, {"operator", op}};
  if (!values.is_null()) e["values"] = std::move(values);
  return e;
}

Json match_expressions(std::vector<Json> expressions) {
  return {{"matchExpressions", Json(std::move(expressions))}};
}

Json node(const std::string &name, Json labels = Json::object(), Json taints = Json::array(),
          bool unschedulable = false) {
  labels["kubernetes.io/hostname"] = name;
  Json n;
  n["metadata"]["name"] = name;
  n["metadata"]["labels"] = std::move(labels);
  n["spec"]["taints"] = std::move(taints);
  if (unschedulable) n["spec"]["unschedulable"] = true;
  return n;
}

Json taint(const std::string &key, const std::string &value, const std::string &effect) {
  return {{"key", key}, {"value", value}, {"effect", effect}};
}

Json instance_manager(const std::string &name, const std::string &node_id) {
  Json im;
  im["metadata"]["name"] = name;
  im["metadata"]["namespace"] = kLonghorn;
  im["spec"]["nodeID"] = node_id;
  return im;
}

// A pod spec requiring one of `terms` (each a list of matchExpressions).
Json required_affinity(std::vector<std::vector<Json>> terms) {
  Json node_selector_terms = Json::array();
  for (auto &t : terms) node_selector_terms.push_back({{"matchExpressions", Json(std::move(t))}});
  Json spec;
  spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] =
      std::move(node_selector_terms);
  return spec;
}

Json toleration(const std::string &key, const std::string &effect) {
  return {{"key", key}, {"operator", "Exists"}, {"effect", effect}};
}

const Json kControlPlane = {{"node-role.kubernetes.io/control-plane", "true"}};
const Json kMaster = {{"node-role.kubernetes.io/master", "true"}};

// Three plain workers: every pod without placement fits each of them.
std::vector<Json> three_workers() { return {node("worker-1"), node("worker-2"), node("worker-3")}; }

struct Expected {
  std::string object;
  std::vector<std::string> reason_has;  // substrings of its reason
};

void check_report(const DrainReport &report, const std::vector<Expected> &blockers,
                  const std::vector<std::string> &warnings_have) {
  std::vector<std::string> got;
  std::vector<std::string> want;
  for (const auto &b : report.blockers) got.push_back(b.object);
  for (const auto &b : blockers) want.push_back(b.object);
  CHECK(got == want);
  for (size_t i = 0; i < std::min(report.blockers.size(), blockers.size()); ++i) {
    INFO(report.blockers[i].object);
    CHECK_FALSE(report.blockers[i].reason.empty());
    for (const auto &s : blockers[i].reason_has) CHECK_THAT(report.blockers[i].reason, Catch::Contains(s));
  }
  CHECK(report.warnings.size() == warnings_have.size());
  for (size_t i = 0; i < std::min(report.warnings.size(), warnings_have.size()); ++i) {
    CHECK_THAT(report.warnings[i], Catch::Contains(warnings_have[i]));
  }
}

struct PdbRow {
  const char *what;
  std::vector<Json> pdbs;
  std::vector<Json> pods;
  std::vector<Expected> blockers;
  std::vector<std::string> warnings;  // a substring of each warning, in sorted order
};

void check_rows(const std::vector<PdbRow> &rows, const std::vector<Json> &nodes,
                const std::vector<Json> &instance_managers = {}) {
  for (const auto &row : rows) {
    INFO(row.what);
    check_report(pod_disruption_budget_blockers(row.pdbs, row.pods, nodes, instance_managers, kLonghorn),
                 row.blockers, row.warnings);
  }
}

}  // namespace

TEST_CASE("rule 1: a PDB over the live pods it selects that can never allow a disruption", "[drain]") {
  const Json web = {{"app", "web"}};
  const Json sync_failed =
      Json::array({{{"type", "DisruptionAllowed"}, {"status", "False"}, {"reason", "SyncFailed"}}});
  const auto two_web = [&] { return std::vector<Json>{pod("ns", "web-0", web), pod("ns", "web-1", web)}; };
  const std::vector<PdbRow> rows = {
      {"minAvailable equal to the pods",
       {budget("ns", "web", match_labels(web), {{"minAvailable", 2}})},
       two_web(),
       {{"ns/web", {"minAvailable 2 of 2 pods"}}},
       {}},
      {"minAvailable above the pods",
       {budget("ns", "web", match_labels(web), {{"minAvailable", 3}})},
       two_web(),
       {{"ns/web", {"minAvailable 3 of 2 pods"}}},
       {}},
      {"minAvailable below the pods, enough nodes",
       {budget("ns", "web", match_labels(web), {{"minAvailable", 1}}, 1)},
       two_web(),
       {},
       {}},
      {"a Pending pod counts as live",
       {budget("ns", "web", match_labels(web), {{"minAvailable", 2}})},
       {pod("ns", "web-0", web), pod("ns", "web-1", web, "Pending", false)},
       {{"ns/web", {"minAvailable 2 of 2 pods"}}},
       {}},
      {"Succeeded, Failed and terminating pods do not count",
       {budget("ns", "web", match_labels(web), {{"minAvailable", 2}})},
       {pod("ns", "web-0", web), pod("ns", "web-1", web), pod("ns", "web-2", web, "Succeeded", false),
        pod("ns", "web-3", web, "Failed", false), terminating(pod("ns", "web-4", web))},
       {{"ns/web", {"minAvailable 2 of 2 pods"}}},
       {}},
      {"maxUnavailable 0",
       {budget("ns", "web", match_labels(web), {{"maxUnavailable", 0}})},
       two_web(),
       {{"ns/web", {"maxUnavailable 0"}}},
       {}},
      {"maxUnavailable 0%",
       {budget("ns", "web", match_labels(web), {{"maxUnavailable", "0%"}})},
       two_web(),
       {{"ns/web", {"maxUnavailable 0"}}},
       {}},
      {"minAvailable 100%",
       {budget("ns", "web", match_labels(web), {{"minAvailable", "100%"}})},
       two_web(),
       {{"ns/web", {"minAvailable 100%"}}},
       {}},
      {"DisruptionAllowed=False with reason SyncFailed",
       {budget("ns", "web", match_labels(web), {{"maxUnavailable", 1}}, nullptr, sync_failed)},
       two_web(),
       {{"ns/web", {"SyncFailed"}}},
       {}},
      {"maxUnavailable 1",
       {budget("ns", "web", match_labels(web), {{"maxUnavailable", 1}})},
       two_web(),
       {},
       {}},
      {"minAvailable 50%",
       {budget("ns", "web", match_labels(web), {{"minAvailable", "50%"}})},
       two_web(),
       {},
       {}},
      {"a PDB selecting no pod at all",
       {budget("ns", "db", match_labels({{"app", "db"}}), {{"maxUnavailable", 0}})},
       two_web(),
       {},
       {}},
      {"no pods, no PDBs", {}, {}, {}, {}},
  };
  check_rows(rows, three_workers());
}

TEST_CASE("a PDB selecting only pods the drain does not evict is not judged", "[drain]") {
  const Json web = {{"app", "web"}};
  struct Row {
    const char *what;
    Json pod;
    bool blocks;
  };
  Json no_conditions = pod("ns", "web-0", web);
  no_conditions["status"].erase("conditions");
  const std::vector<Row> rows = {
      {"Running and Ready: judged", pod("ns", "web-0", web), true},
      {"Pending", pod("ns", "web-0", web, "Pending", false), false},
      {"Succeeded", pod("ns", "web-0", web, "Succeeded", false), false},
      {"Failed", pod("ns", "web-0", web, "Failed", false), false},
      {"Running, not Ready", pod("ns", "web-0", web, "Running", false), false},
      {"Running without conditions", no_conditions, false},
      {"terminating", terminating(pod("ns", "web-0", web)), false},
      {"a DaemonSet pod", owned_by(pod("ns", "web-0", web), "DaemonSet"), false},
      {"a mirror pod (owned by its Node)", owned_by(pod("ns", "web-0", web), "Node"), false},
  };
  for (const auto &row : rows) {
    INFO(row.what);
    // Either PDB alone would block the pod by rule 1, and the two together
    // by rule 2.
    const std::vector<Json> pdbs = {budget("ns", "a", match_labels(web), {{"minAvailable", 1}}),
                                    budget("ns", "b", Json::object(), {{"maxUnavailable", 0}})};
    const auto report =
        pod_disruption_budget_blockers(pdbs, std::vector<Json>{row.pod}, three_workers(), {}, kLonghorn);
    if (row.blocks) {
      check_report(report, {{"ns/a", {"minAvailable 1 of 1 pods"}}, {"ns/b", {"maxUnavailable 0"}}}, {});
    } else {
      check_report(report, {}, {});
    }
  }
}

TEST_CASE("PDB selectors select with Kubernetes' semantics", "[drain]") {
  const std::vector<Json> pods = {
      pod("a", "web", {{"app", "web"}, {"tier", "front"}}),
      pod("a", "api", {{"app", "api"}, {"tier", "back"}}),
      pod("a", "db", {{"app", "db"}}),
      pod("a", "bare", nullptr),
      pod("b", "web", {{"app", "web"}, {"tier", "front"}}),
      pod("b", "other", {{"app", "other"}}),
  };
  const auto one = [](Json selector, int min_available) {
    return std::vector<Json>{budget("a", "pdb", std::move(selector), {{"minAvailable", min_available}})};
  };
  // minAvailable n blocks exactly when the selector picks at most n live
  // pods: each row asserts the count through "minAvailable n of m pods".
  const std::vector<PdbRow> rows = {
      {"an empty selector selects every pod of its namespace, no other",
       one(Json::object(), 4),
       pods,
       {{"a/pdb", {"minAvailable 4 of 4 pods"}}},
       {}},
      {"an empty selector: 3 of the namespace's 4 pods are not enough", one(Json::object(), 3), pods, {}, {}},
      {"a null selector selects nothing", one(nullptr, 1), pods, {}, {}},
      {"an absent selector selects nothing", one(absent(), 1), pods, {}, {}},
      {"matchLabels",
       one(match_labels({{"app", "web"}}), 1),
       pods,
       {{"a/pdb", {"minAvailable 1 of 1 pods"}}},
       {}},
      {"In",
       one(match_expressions({expression("app", "In", {"web", "api", "nope"})}), 2),
       pods,
       {{"a/pdb", {"minAvailable 2 of 2 pods"}}},
       {}},
      {"In listing a value twice still selects each pod once",
       one(match_expressions({expression("app", "In", {"web", "web"})}), 1),
       pods,
       {{"a/pdb", {"minAvailable 1 of 1 pods"}}},
       {}},
      {"NotIn holds for pods without the label",
       one(match_expressions({expression("app", "NotIn", {"web"})}), 3),
       pods,
       {{"a/pdb", {"minAvailable 3 of 3 pods"}}},
       {}},
      {"Exists",
       one(match_expressions({expression("tier", "Exists")}), 2),
       pods,
       {{"a/pdb", {"minAvailable 2 of 2 pods"}}},
       {}},
      {"DoesNotExist",
       one(match_expressions({expression("tier", "DoesNotExist")}), 2),
       pods,
       {{"a/pdb", {"minAvailable 2 of 2 pods"}}},
       {}},
      {"matchLabels and matchExpressions must all hold",
       one({{"matchLabels", {{"tier", "front"}}},
            {"matchExpressions", Json::array({expression("app", "NotIn", {"api"})})}},
           1),
       pods,
       {{"a/pdb", {"minAvailable 1 of 1 pods"}}},
       {}},
      {"a selector no pod matches", one(match_labels({{"app", "other"}}), 1), pods, {}, {}},
      {"an unknown operator: a warning, not judged",
       one(match_expressions({expression("app", "Equals", {"web"})}), 1),
       pods,
       {},
       {"not judged"}},
      {"In without values: a warning, not judged",
       one(match_expressions({expression("app", "In")}), 1),
       pods,
       {},
       {"not judged"}},
  };
  check_rows(rows, three_workers());
  const auto report =
      pod_disruption_budget_blockers(one(match_expressions({expression("app", "Equals", {"web"})}), 1), pods,
                                     three_workers(), {}, kLonghorn);
  REQUIRE(report.warnings.size() == 1);
  CHECK_THAT(report.warnings[0], Catch::Contains("a/pdb") && Catch::Contains("unknown operator"));
  // Kubernetes takes the values of In as a set: a value listed twice must
  // neither count a pod twice nor make the PDB overlap with itself.
  const auto twice =
      pod_disruption_budget_blockers(one(match_expressions({expression("app", "In", {"web", "web"})}), 1),
                                     pods, three_workers(), {}, kLonghorn);
  for (const auto &b : twice.blockers) CHECK_THAT(b.reason, !Catch::Contains("also selected by"));
}

TEST_CASE("rule 2: a pod selected by more than one PDB", "[drain]") {
  const Json both = {{"app", "web"}, {"tier", "front"}};
  const std::vector<PdbRow> rows = {
      {"two PDBs over one pod: both block, each naming the other",
       {budget("ns", "by-app", match_labels({{"app", "web"}}), {{"maxUnavailable", 1}}),
        budget("ns", "by-tier", match_labels({{"tier", "front"}}), {{"maxUnavailable", 1}})},
       {pod("ns", "web-0", both), pod("ns", "web-1", both)},
       {{"ns/by-app", {"pod ns/web-0 is also selected by ns/by-tier"}},
        {"ns/by-tier", {"pod ns/web-0 is also selected by ns/by-app"}}},
       {}},
      {"three PDBs over one pod: each names the other two",
       {budget("ns", "c", match_labels({{"app", "web"}}), {{"maxUnavailable", 1}}),
        budget("ns", "a", Json::object(), {{"maxUnavailable", 1}}),
        budget("ns", "b", match_labels({{"tier", "front"}}), {{"maxUnavailable", 1}})},
       {pod("ns", "web-0", both)},
       {{"ns/a", {"also selected by ns/c, ns/b"}},
        {"ns/b", {"also selected by ns/c, ns/a"}},
        {"ns/c", {"also selected by ns/a, ns/b"}}},
       {}},
      {"two PDBs over different pods",
       {budget("ns", "web", match_labels({{"app", "web"}}), {{"maxUnavailable", 1}}),
        budget("ns", "db", match_labels({{"app", "db"}}), {{"maxUnavailable", 1}})},
       {pod("ns", "web-0", {{"app", "web"}}), pod("ns", "db-0", {{"app", "db"}})},
       {},
       {}},
      {"empty selectors in two namespaces do not overlap",
       {budget("a", "all", Json::object(), {{"maxUnavailable", 1}}),
        budget("b", "all", Json::object(), {{"maxUnavailable", 1}})},
       {pod("a", "x", nullptr), pod("b", "x", nullptr)},
       {},
       {}},
      {"the shared pod is Pending: the Eviction API is not asked",
       {budget("ns", "by-app", match_labels({{"app", "web"}}), {{"maxUnavailable", 1}}),
        budget("ns", "by-tier", match_labels({{"tier", "front"}}), {{"maxUnavailable", 1}})},
       {pod("ns", "web-0", both, "Pending", false), pod("ns", "web-1", {{"app", "web"}}),
        pod("ns", "web-2", {{"tier", "front"}})},
       {},
       {}},
      {"rule 1 and rule 2 together",
       {budget("ns", "strict", match_labels({{"app", "web"}}), {{"maxUnavailable", 0}}),
        budget("ns", "loose", match_labels({{"tier", "front"}}), {{"maxUnavailable", 1}})},
       {pod("ns", "web-0", both)},
       {{"ns/loose", {"also selected by ns/strict"}},
        {"ns/strict", {"maxUnavailable 0", "also selected by ns/loose"}}},
       {}},
      // Four budgets per pod are kept to be named (1,000 PDBs over a
      // namespace stay bounded), the rest counted: capped as every other
      // list of names ("and others" before issue 24 said not how many).
      {"six PDBs over one pod: the first four name three others and count the rest",
       {budget("ns", "a", Json::object(), {{"maxUnavailable", 1}}),
        budget("ns", "b", Json::object(), {{"maxUnavailable", 1}}),
        budget("ns", "c", Json::object(), {{"maxUnavailable", 1}}),
        budget("ns", "d", Json::object(), {{"maxUnavailable", 1}}),
        budget("ns", "e", Json::object(), {{"maxUnavailable", 1}}),
        budget("ns", "f", Json::object(), {{"maxUnavailable", 1}})},
       {pod("ns", "web-0", both)},
       {{"ns/a",
         {"pod ns/web-0 is also selected by ns/b, ns/c, ns/d, and 2 more, and a pod with two budgets"}},
        {"ns/b", {"also selected by ns/a, ns/c, ns/d, and 2 more,"}},
        {"ns/c", {"also selected by ns/a, ns/b, ns/d, and 2 more,"}},
        {"ns/d", {"also selected by ns/a, ns/b, ns/c, and 2 more,"}}},
       {}},
  };
  check_rows(rows, three_workers());
}

TEST_CASE("rule 3: a budget needing a healthy pod whose placement fits at most one node", "[drain]") {
  const std::vector<Json> nodes = {
      node("cp-1", kControlPlane),
      node("cp-2", kControlPlane, Json::array(), true),  // cordoned
      node("witness",
           {{"node-role.kubernetes.io/control-plane", "true"}, {"node-role.harvesterhci.io/witness", "true"}},
           Json::array({taint("node-role.kubernetes.io/etcd", "true", "NoExecute")})),
      node("worker-1", {{"disk", "ssd"}}),
      node("worker-2"),
  };
  const Json web = {{"app", "web"}};
  const auto placed = [&](Json spec) {
    return std::vector<Json>{pod("ns", "web-0", web, "Running", true, spec),
                             pod("ns", "web-1", web, "Running", true, spec)};
  };
  const auto healthy = [&](Json desired) {
    return std::vector<Json>{
        budget("ns", "web", match_labels(web), {{"maxUnavailable", 1}}, std::move(desired))};
  };
  const Json ssd = {{"nodeSelector", {{"disk", "ssd"}}}};
  const Json cp_exists = required_affinity({{expression("node-role.kubernetes.io/control-plane", "Exists")}});
  Json cp_tolerating_etcd = cp_exists;
  cp_tolerating_etcd["tolerations"] = Json::array({toleration("node-role.kubernetes.io/etcd", "NoExecute")});
  Json cp_tolerating_cordon = cp_exists;
  cp_tolerating_cordon["tolerations"] =
      Json::array({toleration("node.kubernetes.io/unschedulable", "NoSchedule")});
  Json by_name;
  by_name["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] =
      Json::array(
          {{{"matchFields",
             Json::array({{{"key", "metadata.name"}, {"operator", "In"}, {"values", {"worker-2"}}}})}}});
  const std::vector<PdbRow> rows = {
      {"nodeSelector matching one node",
       healthy(1),
       placed(ssd),
       {{"ns/web", {"pod ns/web-0", "only", "node worker-1"}}},
       {}},
      {"nodeSelector matching no node",
       healthy(2),
       placed({{"nodeSelector", {{"disk", "nvme"}}}}),
       {{"ns/web", {"pod ns/web-0", "no schedulable node"}}},
       {}},
      {"control-plane Exists: the other one cordoned, the witness tainted",
       healthy(1),
       placed(cp_exists),
       {{"ns/web", {"only", "node cp-1"}}},
       {}},
      {"control-plane Exists tolerating the etcd taint: cp-1 and the witness",
       healthy(1),
       placed(cp_tolerating_etcd),
       {},
       {}},
      {"control-plane Exists tolerating the cordon: cp-1 and cp-2",
       healthy(1),
       placed(cp_tolerating_cordon),
       {},
       {}},
      {"matchFields on metadata.name",
       healthy(1),
       placed(by_name),
       {{"ns/web", {"only", "node worker-2"}}},
       {}},
      {"no placement: every schedulable, untainted node", healthy(1), placed(Json::object()), {}, {}},
      {"desiredHealthy 0", healthy(0), placed(ssd), {}, {}},
      {"no desiredHealthy in the status", healthy(nullptr), placed(ssd), {}, {}},
      {"rule 1 and rule 3 in one reason",
       {budget("ns", "web", match_labels(web), {{"minAvailable", 1}}, 1)},
       {pod("ns", "web-0", web, "Running", true, ssd)},
       {{"ns/web", {"minAvailable 1 of 1 pods", "only", "node worker-1"}}},
       {}},
      {"only an evicted pod's placement counts",
       healthy(1),
       {pod("ns", "web-0", web, "Pending", false, ssd), pod("ns", "web-1", web)},
       {},
       {}},
  };
  check_rows(rows, nodes);
}

TEST_CASE("#7647: virt-api fits only the one control-plane node", "[drain]") {
  const Json virt_api = {{"kubevirt.io", "virt-api"}};
  Json spec = required_affinity({{expression("node-role.kubernetes.io/control-plane", "Exists")},
                                 {expression("node-role.kubernetes.io/master", "Exists")}});
  spec["tolerations"] = Json::array({toleration("node-role.kubernetes.io/control-plane", "NoSchedule"),
                                     toleration("node-role.kubernetes.io/master", "NoSchedule")});
  const std::vector<Json> pods = {
      pod("harvester-system", "virt-api-7d9f-abcde", virt_api, "Running", true, spec),
      pod("harvester-system", "virt-api-7d9f-fghij", virt_api, "Running", true, spec)};
  const std::vector<Json> pdbs = {
      budget("harvester-system", "virt-api-pdb", match_labels(virt_api), {{"minAvailable", 1}}, 1)};
  const Json cp_taint = Json::array({taint("node-role.kubernetes.io/control-plane", "true", "NoSchedule")});
  SECTION("one control-plane node and two workers") {
    const std::vector<Json> nodes = {node("node-1", kControlPlane, cp_taint), node("node-2"), node("node-3")};
    check_report(
        pod_disruption_budget_blockers(pdbs, pods, nodes, {}, kLonghorn),
        {{"harvester-system/virt-api-pdb", {"harvester-system/virt-api-7d9f-abcde", "only", "node node-1"}}},
        {});
  }
  SECTION("three control-plane nodes, one labelled master only") {
    const std::vector<Json> nodes = {node("node-1", kControlPlane, cp_taint),
                                     node("node-2", kControlPlane, cp_taint), node("node-3", kMaster)};
    check_report(pod_disruption_budget_blockers(pdbs, pods, nodes, {}, kLonghorn), {}, {});
  }
}

TEST_CASE("Longhorn instance-manager PDBs are judged by their instance manager's node (#3730)", "[drain]") {
  const Json labels = {{"longhorn.io/component", "instance-manager"}, {"longhorn.io/node", "node-1"}};
  const std::vector<Json> pdbs = {
      budget(kLonghorn, "instance-manager-abc", match_labels(labels), {{"minAvailable", 1}})};
  const std::vector<Json> pods = {pod(kLonghorn, "instance-manager-abc", labels)};
  const std::vector<Json> nodes = {node("node-1"), node("node-2"), node("node-3")};
  struct Row {
    const char *what;
    std::vector<Json> instance_managers;
    std::vector<Expected> blockers;
    std::vector<std::string> warnings;
  };
  const std::vector<Row> rows = {
      {"its instance manager is on its node: Longhorn deletes it, minAvailable 1 of 1 is not judged",
       {instance_manager("instance-manager-abc", "node-1"),
        instance_manager("instance-manager-def", "node-2")},
       {},
       {}},
      {"its instance manager is on another node",
       {instance_manager("instance-manager-abc", "node-2")},
       {{"longhorn-system/instance-manager-abc", {"#3730", "node-2", "longhorn.io/node node-1"}}},
       {}},
      {"no instance manager of its name",
       {instance_manager("instance-manager-def", "node-1"),
        instance_manager("instance-manager-ghi", "node-2")},
       {},
       {"PDB longhorn-system/instance-manager-abc names no instance manager"}},
      {"no instance managers listed at all", {}, {}, {}},
  };
  for (const auto &row : rows) {
    INFO(row.what);
    check_report(pod_disruption_budget_blockers(pdbs, pods, nodes, row.instance_managers, kLonghorn),
                 row.blockers, row.warnings);
  }
  SECTION("outside the Longhorn namespace it is an ordinary PDB") {
    check_report(pod_disruption_budget_blockers(
                     pdbs, pods, nodes, {instance_manager("instance-manager-abc", "node-1")}, "storage"),
                 {{"longhorn-system/instance-manager-abc", {"minAvailable 1 of 1 pods"}}}, {});
  }
}

TEST_CASE("a KubeVirt evacuation PDB is a warning, not a blocker", "[drain]") {
  const Json launcher = {{"kubevirt.io/created-by", "1234"}};
  const std::vector<Json> pdbs = {budget("default", "kubevirt-migration-pdb-kubevirt-evacuation-xyz",
                                         match_labels(launcher), {{"minAvailable", 2}})};
  const std::vector<Json> pods = {pod("default", "virt-launcher-vm-abcde", launcher)};
  const auto report = pod_disruption_budget_blockers(pdbs, pods, three_workers(), {}, kLonghorn);
  check_report(report, {}, {"default/kubevirt-migration-pdb-kubevirt-evacuation-xyz"});
  CHECK_THAT(report.warnings.at(0), Catch::Contains("evacuation PDB"));
}

TEST_CASE("blockers are sorted by object, warnings too", "[drain]") {
  const Json all = Json::object();
  const Json bad = match_expressions({expression("app", "Equals", {"x"})});
  const std::vector<Json> pdbs = {
      budget("z", "b", all, {{"maxUnavailable", 0}}),
      budget("a", "z", all, {{"maxUnavailable", 0}}),
      budget("m", "bad", bad, {{"maxUnavailable", 0}}),
      budget("default", "kubevirt-migration-pdb-kubevirt-evacuation-q", all, {{"maxUnavailable", 0}}),
      budget("a", "b", all, {{"maxUnavailable", 0}}),
      budget("m", "a", all, {{"maxUnavailable", 0}}),
  };
  const std::vector<Json> pods = {pod("z", "p", nullptr), pod("a", "p", nullptr), pod("m", "p", nullptr)};
  const auto report = pod_disruption_budget_blockers(pdbs, pods, three_workers(), {}, kLonghorn);
  // a/b and a/z share a/p: both block for rule 2 as well.
  check_report(report,
               {{"a/b", {"maxUnavailable 0", "also selected by a/z"}},
                {"a/z", {"maxUnavailable 0", "also selected by a/b"}},
                {"m/a", {"maxUnavailable 0"}},
                {"z/b", {"maxUnavailable 0"}}},
               {"m/bad", "evacuation"});
  CHECK(std::is_sorted(report.warnings.begin(), report.warnings.end()));
}

namespace {

Json kubevirt(const std::string &name, Json spec) {
  Json kv;
  kv["metadata"]["name"] = name;
  kv["metadata"]["namespace"] = "harvester-system";
  if (!spec.is_discarded()) kv["spec"] = std::move(spec);
  return kv;
}

}  // namespace

TEST_CASE(
    "kubevirt-placement: KubeVirt CRs without nodePlacement where one control-plane node is schedulable",
    "[drain]") {
  const Json null_placement = {{"infra", {{"nodePlacement", nullptr}}}};
  const Json empty_placement = {{"infra", {{"nodePlacement", Json::object()}}}};
  // Listed in reverse so the sort shows.
  const std::vector<Json> kubevirts = {
      kubevirt("kv-set", empty_placement),
      kubevirt("kv-null-placement", null_placement),
      kubevirt("kv-null-infra", {{"infra", nullptr}}),
      kubevirt("kv-empty-infra", {{"infra", Json::object()}}),
      kubevirt("kv-absent", Json::object()),
      kubevirt("kv-no-spec", absent()),
  };
  const std::vector<std::string> unplaced = {
      "harvester-system/kv-absent",     "harvester-system/kv-empty-infra",    "harvester-system/kv-no-spec",
      "harvester-system/kv-null-infra", "harvester-system/kv-null-placement",
  };
  const Json witness = {{"node-role.kubernetes.io/control-plane", "true"},
                        {"node-role.harvesterhci.io/witness", "true"}};
  const Json etcd = Json::array({taint("node-role.kubernetes.io/etcd", "true", "NoExecute")});
  struct Row {
    const char *what;
    std::vector<Json> nodes;
    std::vector<std::string> kubevirts;
    std::vector<std::string> control_plane_nodes;
  };
  const std::vector<Row> rows = {
      {"no nodes", {}, {}, {}},
      {"a one-node cluster", {node("cp-1", kControlPlane)}, {}, {}},
      {"three nodes, one control plane",
       {node("w-1"), node("cp-1", kControlPlane), node("w-2")},
       unplaced,
       {"cp-1"}},
      {"two schedulable control-plane nodes",
       {node("cp-1", kControlPlane), node("cp-2", kControlPlane), node("w-1")},
       {},
       {}},
      {"two control-plane nodes, one cordoned",
       {node("cp-1", kControlPlane), node("cp-2", kControlPlane, Json::array(), true), node("w-1")},
       unplaced,
       {"cp-1"}},
      {"two control-plane nodes, one the witness",
       {node("cp-1", kControlPlane), node("witness", witness, etcd)},
       unplaced,
       {"cp-1"}},
      {"no schedulable control-plane node",
       {node("cp-1", kControlPlane, Json::array(), true), node("w-1"), node("w-2")},
       unplaced,
       {}},
      {"workers only", {node("w-1"), node("w-2")}, unplaced, {}},
      {"master counts as control plane",
       {node("m-1", kMaster), node("cp-1", kControlPlane), node("w-1")},
       {},
       {}},
      {"the one control-plane node labelled master only",
       {node("m-1", kMaster), node("w-1")},
       unplaced,
       {"m-1"}},
      {"master with an empty value",
       {node("m-1", {{"node-role.kubernetes.io/master", ""}}), node("w-1")},
       unplaced,
       {"m-1"}},
  };
  for (const auto &row : rows) {
    INFO(row.what);
    const auto report = kubevirt_placement_blockers(kubevirts, row.nodes);
    CHECK(report.kubevirts == row.kubevirts);
    CHECK(report.control_plane_nodes == row.control_plane_nodes);
  }
  SECTION("every CR has a nodePlacement: nothing, no control-plane node named") {
    const auto report = kubevirt_placement_blockers({kubevirt("kv-set", empty_placement)},
                                                    {node("cp-1", kControlPlane), node("w-1"), node("w-2")});
    CHECK(report.kubevirts.empty());
    CHECK(report.control_plane_nodes.empty());
  }
  SECTION("no KubeVirt CRs") {
    const auto report = kubevirt_placement_blockers({}, {node("cp-1", kControlPlane), node("w-1")});
    CHECK(report.kubevirts.empty());
    CHECK(report.control_plane_nodes.empty());
  }
}
