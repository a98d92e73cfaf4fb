#include "upgrade_guard.hpp"
#include "policy_harness.hpp"

#include <catch2/catch.hpp>

using namespace hci_admission;
using test_support::run_policy;
using webhooks::UpgradeGuard;

namespace {

const Json kUpgradeKind = {{"group", "harvesterhci.io"}, {"version", "v1beta1"}, {"kind", "Upgrade"}};

Json node(const std::string &name) {
  return {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", name}}}};
}

Json volume(const std::string &name, int replicas, const std::string &state, const std::string &ns = "",
            const std::string &pvc = "", const std::string &longhorn_ns = "longhorn-system") {
  Json v = {{"apiVersion", "longhorn.io/v1beta2"},
            {"kind", "Volume"},
            {"metadata", {{"name", name}, {"namespace", longhorn_ns}}},
            {"spec", {{"numberOfReplicas", replicas}, {"size", "10737418240"}, {"frontend", "blockdev"}}},
            {"status", {{"state", state}, {"robustness", "healthy"}}}};
  if (!pvc.empty() || !ns.empty()) {
    v["status"]["kubernetesStatus"] = {
        {"namespace", ns}, {"pvcName", pvc}, {"pvName", name}, {"workloadsStatus", nullptr}};
  }
  return v;
}

Json upgrade(Json annotations = Json::object()) {
  return {
      {"apiVersion", "harvesterhci.io/v1beta1"},
      {"kind", "Upgrade"},
      {"metadata",
       {{"generateName", "hvst-upgrade-"}, {"namespace", "harvester-system"}, {"annotations", annotations}}},
      {"spec", {{"version", "v1.5.0"}}}};
}

std::vector<Json> three_nodes() { return {node("n1"), node("n2"), node("n3")}; }

Decision decide(const std::vector<Json> &objects, const Json &object,
                const std::string &operation = "CREATE") {
  StaticClusterView view(objects);
  UpgradeGuard guard(view, {});
  return run_policy(UpgradeGuard::spec(), guard, object, kUpgradeKind, operation).decision;
}

// A cluster that cannot be read, to show when the guard does not look.
class UnreadableCluster : public ClusterView {
 public:
  std::vector<Json> list(const ResourceRef &r, const std::vector<std::string> &, Deadline) const override {
    ++reads;
    throw ClusterReadError("GET " + r.describe() + ": connection refused");
  }
  std::string describe() const override { return "nowhere"; }
  mutable int reads = 0;
};

}  // namespace

TEST_CASE("upgrade-guard: no single-replica volume, no objection", "[upgrade]") {
  auto objects = three_nodes();
  CHECK(decide(objects, upgrade()).allowed);
  objects.push_back(volume("pvc-1", 3, "attached", "default", "data"));
  objects.push_back(volume("pvc-2", 2, "detached", "default", "logs"));
  const Decision d = decide(objects, upgrade());
  CHECK(d.allowed);
  CHECK(d.warnings.empty());
}

TEST_CASE("upgrade-guard: without the annotation any single-replica volume refuses", "[upgrade]") {
  auto objects = three_nodes();
  objects.push_back(volume("pvc-b", 1, "detached", "team-b", "db"));
  objects.push_back(volume("pvc-a", 1, "attached", "team-a", "web"));
  objects.push_back(volume("pvc-c", 1, "", "", ""));  // no kubernetesStatus: named by the volume
  objects.push_back(volume("pvc-d", 1, "attached", "other", "x", "elsewhere"));  // not in longhorn-system
  objects.push_back(volume("pvc-e", 3, "attached", "team-a", "safe"));
  for (const Json &annotations : {Json::object(), Json{{UpgradeGuard::kSkipDetachedAnnotation, ""}},
                                  Json{{UpgradeGuard::kSkipDetachedAnnotation, "false"}},
                                  Json{{UpgradeGuard::kSkipDetachedAnnotation, "FALSE"}}}) {
    INFO("annotations: " << annotations.dump());
    const Decision d = decide(objects, upgrade(annotations));
    CHECK_FALSE(d.allowed);
    CHECK(d.code == 422);
    CHECK(d.reason == "Invalid");
    CHECK(d.message ==
          "Following PVCs with single-replica volume, even the volume is detached, upgrade may have "
          "potential data "
          "integrity concerns: pvc-c, team-a/web, team-b/db");
    REQUIRE(d.causes.size() == 1);
    CHECK(d.causes[0].type == "FieldValueInvalid");
  }
}

TEST_CASE("upgrade-guard: with the annotation only active volumes refuse", "[upgrade]") {
  auto objects = three_nodes();
  objects.push_back(volume("pvc-1", 1, "detached", "ns2", "b"));
  objects.push_back(volume("pvc-2", 1, "detached", "ns1", "a"));
  objects.push_back(volume("pvc-3", 1, "detaching", "ns1", "c"));
  for (const char *value : {"true", "TRUE", "True"}) {
    INFO("value: " << value);
    const Decision allowed = decide(objects, upgrade({{UpgradeGuard::kSkipDetachedAnnotation, value}}));
    CHECK(allowed.allowed);
    REQUIRE(allowed.warnings.size() == 1);
    CHECK(allowed.warnings[0] ==
          "single-replica volumes not attached, allowed by harvesterhci.io/skipSingleReplicaDetachedVol (3): "
          "ns1/a, ns1/c, ns2/b");
  }
  for (const char *state : {"attached", "attaching", "creating"}) {
    INFO("state: " << state);
    auto with_active = objects;
    with_active.push_back(volume("pvc-9", 1, state, "prod", "db"));
    const Decision d = decide(with_active, upgrade({{UpgradeGuard::kSkipDetachedAnnotation, "true"}}));
    CHECK_FALSE(d.allowed);
    CHECK(d.code == 422);
    CHECK(d.message ==
          "Following PVCs with active single-replica volume, please consider shutdown the corresponding "
          "workload "
          "before upgrade: prod/db");
  }
}

TEST_CASE("upgrade-guard: a value that is neither true nor false is refused", "[upgrade]") {
  const Decision d = decide(three_nodes(), upgrade({{UpgradeGuard::kSkipDetachedAnnotation, "yes"}}));
  CHECK_FALSE(d.allowed);
  CHECK(d.code == 422);
  CHECK_THAT(d.message, Catch::Contains("harvesterhci.io/skipSingleReplicaDetachedVol") &&
                            Catch::Contains("\"yes\"") && Catch::Contains("\"true\" and \"false\""));
}

TEST_CASE("upgrade-guard: single-node clusters and skipWebhook pass with a warning", "[upgrade]") {
  std::vector<Json> one_node = {node("n1"), volume("pvc-1", 1, "attached", "a", "b")};
  const Decision single = decide(one_node, upgrade());
  CHECK(single.allowed);
  REQUIRE(single.warnings.size() == 1);
  CHECK_THAT(single.warnings[0], Catch::Contains("single-node cluster"));

  auto objects = three_nodes();
  objects.push_back(volume("pvc-1", 1, "attached", "a", "b"));
  for (const char *value : {"true", "TRUE"}) {
    const Decision bypassed = decide(objects, upgrade({{UpgradeGuard::kSkipWebhookAnnotation, value}}));
    CHECK(bypassed.allowed);
    REQUIRE(bypassed.warnings.size() == 1);
    CHECK_THAT(bypassed.warnings[0], Catch::Contains("bypassed"));
  }
  CHECK_FALSE(decide(objects, upgrade({{UpgradeGuard::kSkipWebhookAnnotation, "false"}})).allowed);
}

TEST_CASE("upgrade-guard: UPDATE and DELETE pass without reading the cluster", "[upgrade]") {
  UnreadableCluster view;
  UpgradeGuard guard(view, {});
  for (const char *op : {"UPDATE", "DELETE"}) {
    CHECK(run_policy(UpgradeGuard::spec(), guard, upgrade(), kUpgradeKind, op).decision.allowed);
  }
  CHECK(view.reads == 0);
}

TEST_CASE("upgrade-guard: a cluster it cannot read refuses, saying why", "[upgrade]") {
  UnreadableCluster view;
  UpgradeGuard guard(view, {});
  const Decision d = run_policy(UpgradeGuard::spec(), guard, upgrade(), kUpgradeKind).decision;
  CHECK_FALSE(d.allowed);
  CHECK(d.code == 503);
  CHECK_THAT(d.message,
             Catch::Contains("could not read the cluster") && Catch::Contains("connection refused"));
}

TEST_CASE("upgrade-guard: long lists stay readable", "[upgrade]") {
  auto objects = three_nodes();
  for (int i = 0; i < 500; ++i) {
    objects.push_back(
        volume("pvc-" + std::to_string(i), 1, "detached", "ns", "claim-" + std::to_string(1000 + i)));
  }
  const Decision denied = decide(objects, upgrade());
  CHECK_FALSE(denied.allowed);
  CHECK_THAT(denied.message, Catch::EndsWith("and 450 more"));
  const Decision allowed = decide(objects, upgrade({{UpgradeGuard::kSkipDetachedAnnotation, "true"}}));
  CHECK(allowed.allowed);
  const auto limited = limit_warnings(allowed.warnings);
  size_t total = 0;
  for (const auto &w : limited) {
    CHECK(w.size() <= 120);
    total += w.size();
  }
  CHECK(total <= 4096);
  CHECK_THAT(limited.back(), Catch::Contains("more warnings not shown"));
}

TEST_CASE("upgrade-guard: other kinds and missing objects", "[upgrade]") {
  StaticClusterView view(three_nodes());
  UpgradeGuard guard(view, {});
  const auto other =
      run_policy(UpgradeGuard::spec(), guard, upgrade(), {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}});
  CHECK(other.decision.allowed);
  CHECK(other.decision.warnings.size() == 1);
  const auto missing = run_policy(UpgradeGuard::spec(), guard, nullptr, kUpgradeKind);
  CHECK_FALSE(missing.decision.allowed);
  CHECK(missing.decision.code == 400);
  CHECK_THROWS_AS(UpgradeGuard::spec().build(
                      PolicyConfig(std::map<std::string, std::string>{{"longhorn-namespace", "x"}})),
                  std::invalid_argument);
}
