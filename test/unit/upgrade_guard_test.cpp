#include "upgrade_guard.hpp"
#include "policy_harness.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>

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
  mutable std::atomic<int> reads{0};  // list() runs on several threads at once
};

// --- Issue 13: the four checks, and how the guard reads the cluster. ---

const Json kPlanKind = {
    {"group", "management.harvesterhci.io"}, {"version", "v1beta1"}, {"kind", "UpgradePlan"}};

Deadline soon() { return std::chrono::steady_clock::now() + std::chrono::seconds(10); }

// An Upgrade V2 UpgradePlan being created: cluster-scoped, no namespace.
Json upgrade_plan(Json annotations = Json::object()) {
  return {{"apiVersion", "management.harvesterhci.io/v1beta1"},
          {"kind", "UpgradePlan"},
          {"metadata", {{"name", "hvst-upgrade-next"}, {"annotations", annotations}}},
          {"spec", {{"version", "v1.6.0"}}}};
}

// A v1 Upgrade already in the cluster; no state label when `state` is "".
Json existing_upgrade(const std::string &name, const std::string &state,
                      const std::string &ns = "harvester-system") {
  Json u = {{"apiVersion", "harvesterhci.io/v1beta1"},
            {"kind", "Upgrade"},
            {"metadata", {{"name", name}, {"namespace", ns}}},
            {"spec", {{"version", "v1.4.2"}}}};
  if (!state.empty()) u["metadata"]["labels"]["harvesterhci.io/upgradeState"] = state;
  return u;
}

// An UpgradePlan already in the cluster, with its Progressing condition.
Json existing_plan(const std::string &name, const std::string &progressing, const std::string &phase) {
  return {{"apiVersion", "management.harvesterhci.io/v1beta1"},
          {"kind", "UpgradePlan"},
          {"metadata", {{"name", name}}},
          {"status",
           {{"currentPhase", phase},
            {"conditions",
             {{{"type", "Available"}, {"status", "True"}},
              {{"type", "Progressing"}, {"status", progressing}}}}}}};
}

Json control_plane_node(const std::string &name) {
  Json n = node(name);
  n["metadata"]["labels"] = {{"node-role.kubernetes.io/control-plane", "true"}};
  return n;
}

// n1 the only control-plane node: a KubeVirt without placement sticks it.
std::vector<Json> one_control_plane() { return {control_plane_node("n1"), node("n2"), node("n3")}; }

Json kubevirt(bool with_placement) {
  Json kv = {{"apiVersion", "kubevirt.io/v1"},
             {"kind", "KubeVirt"},
             {"metadata", {{"name", "kubevirt"}, {"namespace", "harvester-system"}}},
             {"spec", {{"infra", Json::object()}}}};
  if (with_placement) kv["spec"]["infra"]["nodePlacement"] = Json::object();
  return kv;
}

// A Running, Ready pod the drain would evict.
Json pod(const std::string &ns, const std::string &name, const std::string &app) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"app", app}}}}},
          {"spec", {{"nodeName", "n2"}}},
          {"status", {{"phase", "Running"}, {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
}

Json pdb(const std::string &ns, const std::string &name, const std::string &app, Json spec) {
  spec["selector"] = {{"matchLabels", {{"app", app}}}};
  return {{"apiVersion", "policy/v1"},
          {"kind", "PodDisruptionBudget"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec", std::move(spec)}};
}

// A PDB that never allows a disruption, over a pod the drain evicts.
std::vector<Json> blocking_pdb() {
  return {pod("default", "web-0", "web"), pdb("default", "web", "web", {{"maxUnavailable", 0}})};
}

std::vector<Json> plus(std::vector<Json> a, const std::vector<Json> &b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const std::string kAnyPrefix =
    "Following PVCs with single-replica volume, even the volume is detached, upgrade may have potential data "
    "integrity concerns: ";
const std::string kKubeVirtPrefix = "KubeVirt harvester-system/kubevirt has no spec.infra.nodePlacement";
const std::string kPdbPrefix = "PodDisruptionBudgets that would stop a node drain forever";

// Every resource the guard may list, by plural name.
const std::set<std::string> kAllReads = {
    "instancemanagers", "kubevirts", "nodes",  "poddisruptionbudgets", "pods",
    "upgradeplans",     "upgrades",  "volumes"};

// Objects in memory that records every list (from several threads at
// once: list_concurrently) and fails the resources it is told to.
class RecordingCluster : public ClusterView {
 public:
  enum class Failure { NotServed, ReadError };

  explicit RecordingCluster(std::vector<Json> objects = {}) : inner_(std::move(objects)) {}
  RecordingCluster &fail(const std::string &resource, Failure how) {
    failures_[resource] = how;
    return *this;
  }

  std::vector<Json> list(const ResourceRef &r, const std::vector<std::string> &fields,
                         Deadline deadline) const override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      listed_.push_back(r.resource);
      described_.push_back(r.describe());
    }
    const auto failure = failures_.find(r.resource);
    if (failure != failures_.end()) {
      if (failure->second == Failure::NotServed) {
        throw ResourceNotServed("GET " + r.describe() +
                                ": 404 the server could not find the requested resource");
      }
      throw ClusterReadError("GET " + r.describe() + ": connection refused");
    }
    return inner_.list(r, fields, deadline);
  }
  std::string describe() const override { return "recording"; }

  // The resources listed, sorted, once per list call.
  std::vector<std::string> listed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto out = listed_;
    std::sort(out.begin(), out.end());
    return out;
  }
  std::set<std::string> listed_set() const {
    const auto all = listed();
    return {all.begin(), all.end()};
  }
  std::set<std::string> described() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {described_.begin(), described_.end()};
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    listed_.clear();
    described_.clear();
  }

 private:
  StaticClusterView inner_;
  std::map<std::string, Failure> failures_;
  mutable std::mutex mutex_;
  mutable std::vector<std::string> listed_;
  mutable std::vector<std::string> described_;
};

Decision decide_with(const ClusterView &view, const Json &object, const Json &kind = kUpgradeKind) {
  UpgradeGuard guard(view, {});
  return run_policy(UpgradeGuard::spec(), guard, object, kind).decision;
}

// As kube-apiserver sends a cluster-scoped UpgradePlan: no namespace at
// all, through the policy's field mask and rules like run_policy.
Decision review_cluster_scoped_plan(const ClusterView &view, const Json &object) {
  const PolicySpec spec = UpgradeGuard::spec();
  const Json review = {
      {"apiVersion", "admission.k8s.io/v1"},
      {"kind", "AdmissionReview"},
      {"request",
       {{"uid", "u"},
        {"kind", kPlanKind},
        {"resource",
         {{"group", "management.harvesterhci.io"}, {"version", "v1beta1"}, {"resource", "upgradeplans"}}},
        {"name", object["metadata"].value("name", "")},
        {"operation", "CREATE"},
        {"object", object},
        {"oldObject", nullptr},
        {"dryRun", false}}}};
  ObjectFields fields{FieldMask::of(spec.object_fields), FieldMask::of(spec.old_object_fields),
                      spec.reads_views};
  const auto decoded = decode_review(review.dump(), fields);
  CHECK(decoded.request.namespace_name.empty());
  const auto screened = spec.screen(decoded.request);
  REQUIRE_FALSE(screened.has_value());
  UpgradeGuard guard(view, {});
  return guard.review(decoded.request);
}

std::vector<UpgradeGuard::CheckState> states_of(const UpgradeGuard::Evaluation &e) {
  std::vector<UpgradeGuard::CheckState> out;
  for (const auto &c : e.checks) out.push_back(c.state);
  return out;
}

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

TEST_CASE("upgrade-guard: every list of names in a message is capped the one way", "[upgrade]") {
  // Issue 24: KubeVirt CRs, upgrades in progress and unknown skip-checks
  // names were joined whole; a cluster (or an annotation) with many made a
  // message of any length. Now each is capped like the PVCs: "..., and N more".
  SECTION("upgrades in progress: 20 named") {
    auto objects = three_nodes();
    for (int i = 0; i < 25; ++i) objects.push_back(existing_upgrade("u" + std::to_string(10 + i), "Started"));
    StaticClusterView view(objects);
    const auto e = UpgradeGuard(view, {}).evaluate(Json::object(), soon());
    CHECK(e.decision.code == 409);
    CHECK_THAT(e.decision.message,
               Catch::Contains("upgrade harvester-system/u29 (state Started), and 5 more"));
    CHECK_THAT(e.decision.message, !Catch::Contains("u30"));
    CHECK(e.checks[0].objects.size() == 25);  // precheck lists them all
  }
  SECTION("KubeVirt CRs: 50 named") {
    auto objects = one_control_plane();
    for (int i = 0; i < 55; ++i) {
      Json kv = kubevirt(false);
      kv["metadata"]["name"] = "kv-" + std::to_string(100 + i);
      objects.push_back(kv);
    }
    const auto e = UpgradeGuard(StaticClusterView(objects), {}).evaluate(Json::object(), soon());
    CHECK_THAT(e.decision.message,
               Catch::Contains("harvester-system/kv-149, and 5 more has no spec.infra.nodePlacement"));
    CHECK(e.checks[2].objects.size() == 55);
  }
  SECTION("unknown skip-checks names: 50 named") {
    std::string listed;
    for (int i = 0; i < 60; ++i) listed += "bogus-" + std::to_string(100 + i) + ",";
    const Decision d = decide(three_nodes(), upgrade({{UpgradeGuard::kSkipChecksAnnotation, listed}}));
    CHECK(d.code == 422);
    CHECK_THAT(d.message, Catch::Contains("\"bogus-149\", and 10 more; the checks it can skip are "
                                          "kubevirt-placement, pod-disruption-budgets"));
  }
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

TEST_CASE("upgrade-guard: an UpgradePlan is judged like an Upgrade", "[upgrade]") {
  // A clean cluster: allowed, whichever kind asks.
  {
    StaticClusterView clean(plus(three_nodes(), {volume("pvc-1", 3, "attached", "default", "data")}));
    const Decision as_plan = decide_with(clean, upgrade_plan(), kPlanKind);
    CHECK(as_plan.allowed);
    CHECK(as_plan.warnings.empty());
    const Decision cluster_scoped = review_cluster_scoped_plan(clean, upgrade_plan());
    CHECK(cluster_scoped.allowed);
    CHECK(cluster_scoped.warnings.empty());
  }
  // Single-replica volumes: the same refusal as for an Upgrade.
  StaticClusterView view(plus(three_nodes(), {volume("pvc-a", 1, "attached", "team-a", "web"),
                                              volume("pvc-b", 1, "detached", "team-b", "db")}));
  const Decision as_upgrade = decide_with(view, upgrade());
  for (const Decision &d :
       {decide_with(view, upgrade_plan(), kPlanKind), review_cluster_scoped_plan(view, upgrade_plan())}) {
    CHECK_FALSE(d.allowed);
    CHECK(d.code == 422);
    CHECK(d.reason == "Invalid");
    CHECK(d.message == kAnyPrefix + "team-a/web, team-b/db");
    CHECK(d.message == as_upgrade.message);
    REQUIRE(d.causes.size() == 1);
    CHECK(d.causes[0].type == "FieldValueInvalid");
  }
  // Its annotations count as an Upgrade's do.
  const Decision detached_ok =
      decide_with(StaticClusterView(plus(three_nodes(), {volume("pvc-b", 1, "detached", "team-b", "db")})),
                  upgrade_plan({{UpgradeGuard::kSkipDetachedAnnotation, "true"}}), kPlanKind);
  CHECK(detached_ok.allowed);
  REQUIRE(detached_ok.warnings.size() == 1);
  CHECK_THAT(detached_ok.warnings[0], Catch::Contains("team-b/db"));
  // Changing or deleting a plan does not drain anything: nothing is read.
  UnreadableCluster unreadable;
  UpgradeGuard guard(unreadable, {});
  for (const char *op : {"UPDATE", "DELETE"}) {
    CHECK(run_policy(UpgradeGuard::spec(), guard, upgrade_plan(), kPlanKind, op).decision.allowed);
  }
  CHECK(unreadable.reads == 0);
}

TEST_CASE("upgrade-guard: an upgrade in progress is a conflict", "[upgrade]") {
  SECTION("a v1 Upgrade not Succeeded or Failed") {
    for (const Json &kind : {kUpgradeKind, kPlanKind}) {
      INFO("reviewing " << kind.dump());
      const Json object = kind == kPlanKind ? upgrade_plan() : upgrade();
      StaticClusterView view(plus(three_nodes(), {existing_upgrade("hvst-upgrade-abc", "UpgradingNodes")}));
      const Decision d = decide_with(view, object, kind);
      CHECK_FALSE(d.allowed);
      CHECK(d.code == 409);
      CHECK(d.reason == "Conflict");
      CHECK(
          d.message ==
          "cannot proceed until the upgrade in progress completes: upgrade harvester-system/hvst-upgrade-abc "
          "(state UpgradingNodes)");
    }
    // No state yet counts as started.
    const Decision fresh = decide_with(
        StaticClusterView(plus(three_nodes(), {existing_upgrade("hvst-upgrade-new", "")})), upgrade());
    CHECK(fresh.code == 409);
    CHECK_THAT(fresh.message,
               Catch::Contains("upgrade harvester-system/hvst-upgrade-new (state not set yet)"));
  }
  SECTION("finished upgrades are not in progress") {
    StaticClusterView view(
        plus(three_nodes(), {existing_upgrade("done", "Succeeded"), existing_upgrade("gave-up", "Failed"),
                             existing_plan("old-plan", "False", "Succeeded")}));
    for (const Json &kind : {kUpgradeKind, kPlanKind}) {
      const Decision d = decide_with(view, kind == kPlanKind ? upgrade_plan() : upgrade(), kind);
      CHECK(d.allowed);
      CHECK(d.warnings.empty());
    }
  }
  SECTION("an UpgradePlan with Progressing=True") {
    StaticClusterView view(plus(three_nodes(), {existing_plan("hvst-upgrade-x", "True", "NodeUpgrading")}));
    for (const Json &kind : {kUpgradeKind, kPlanKind}) {
      const Decision d = decide_with(view, kind == kPlanKind ? upgrade_plan() : upgrade(), kind);
      CHECK_FALSE(d.allowed);
      CHECK(d.code == 409);
      CHECK(d.reason == "Conflict");
      CHECK(d.message ==
            "cannot proceed until the upgrade in progress completes: upgradeplan hvst-upgrade-x (phase "
            "NodeUpgrading)");
    }
  }
  SECTION("several in progress are all named, sorted") {
    StaticClusterView view(
        plus(three_nodes(), {existing_plan("p", "True", ""), existing_upgrade("b", "PreparingRepo"),
                             existing_upgrade("a", "Succeeded")}));
    const Decision d = decide_with(view, upgrade());
    CHECK(d.code == 409);
    CHECK(d.message ==
          "cannot proceed until the upgrade in progress completes: upgrade harvester-system/b (state "
          "PreparingRepo), upgradeplan p (phase unknown)");
  }
  SECTION("it wins over the other checks and skipWebhook does not bypass it") {
    auto objects = plus(one_control_plane(), blocking_pdb());
    objects.push_back(kubevirt(false));
    objects.push_back(volume("pvc-a", 1, "attached", "team-a", "web"));
    objects.push_back(existing_upgrade("hvst-upgrade-abc", "UpgradingNodes"));
    StaticClusterView view(objects);
    for (const Json &annotations :
         {Json::object(), Json{{UpgradeGuard::kSkipWebhookAnnotation, "true"}},
          Json{{UpgradeGuard::kSkipWebhookAnnotation, "TRUE"}},
          Json{{UpgradeGuard::kSkipChecksAnnotation, "kubevirt-placement,pod-disruption-budgets"}},
          Json{{UpgradeGuard::kSkipDetachedAnnotation, "true"}}}) {
      INFO("annotations: " << annotations.dump());
      for (const Json &kind : {kUpgradeKind, kPlanKind}) {
        const Decision d =
            decide_with(view, kind == kPlanKind ? upgrade_plan(annotations) : upgrade(annotations), kind);
        CHECK_FALSE(d.allowed);
        CHECK(d.code == 409);
        CHECK(d.reason == "Conflict");
        CHECK_THAT(d.message, Catch::Contains("hvst-upgrade-abc"));
        CHECK_THAT(d.message, !Catch::Contains("PVCs") && !Catch::Contains("KubeVirt") &&
                                  !Catch::Contains("PodDisruptionBudgets"));
      }
    }
  }
  SECTION("an Upgrade in another namespace is not seen") {
    StaticClusterView view(plus(three_nodes(), {existing_upgrade("elsewhere", "UpgradingNodes", "default")}));
    for (const Json &kind : {kUpgradeKind, kPlanKind}) {
      const Decision d = decide_with(view, kind == kPlanKind ? upgrade_plan() : upgrade(), kind);
      CHECK(d.allowed);
    }
    // ... unless that namespace is the upgrade namespace.
    UpgradeGuard::Namespaces ns;
    ns.upgrades = "default";
    UpgradeGuard guard(view, ns);
    const Decision d = run_policy(UpgradeGuard::spec(), guard, upgrade(), kUpgradeKind).decision;
    CHECK(d.code == 409);
    CHECK_THAT(d.message, Catch::Contains("upgrade default/elsewhere (state UpgradingNodes)"));
  }
}

TEST_CASE("upgrade-guard: every failing check in one refusal", "[upgrade]") {
  auto objects = plus(one_control_plane(), blocking_pdb());
  objects.push_back(kubevirt(false));
  objects.push_back(volume("pvc-a", 1, "attached", "team-a", "web"));
  // An evacuation PDB: a warning, which the refusal keeps.
  objects.push_back(
      pdb("default", "kubevirt-migration-pdb-kubevirt-evacuation-abcde", "vm", {{"minAvailable", 2}}));
  for (const Json &kind : {kUpgradeKind, kPlanKind}) {
    INFO("reviewing " << kind.dump());
    const Decision d =
        decide_with(StaticClusterView(objects), kind == kPlanKind ? upgrade_plan() : upgrade(), kind);
    CHECK_FALSE(d.allowed);
    CHECK(d.code == 422);
    CHECK(d.reason == "Invalid");
    REQUIRE(d.causes.size() == 3);
    for (const auto &c : d.causes) CHECK(c.type == "FieldValueInvalid");
    CHECK(d.causes[0].message == kAnyPrefix + "team-a/web");
    CHECK_THAT(d.causes[1].message, Catch::StartsWith(kKubeVirtPrefix) &&
                                        Catch::Contains("n1 is the only schedulable control-plane node") &&
                                        Catch::Contains("#7647"));
    CHECK(d.causes[2].message ==
          kPdbPrefix +
              ": default/web (maxUnavailable 0); change or remove them, or make room for their pods, before "
              "upgrading");
    CHECK(d.message == d.causes[0].message + "; " + d.causes[1].message + "; " + d.causes[2].message);
    const auto single = d.message.find("PVCs"), kv = d.message.find("KubeVirt "),
               pdbs = d.message.find(kPdbPrefix);
    REQUIRE(single != std::string::npos);
    REQUIRE(kv != std::string::npos);
    REQUIRE(pdbs != std::string::npos);
    CHECK(single < kv);
    CHECK(kv < pdbs);
    REQUIRE(d.warnings.size() == 1);
    CHECK_THAT(d.warnings[0], Catch::StartsWith("upgrade-guard: evacuation PDB") &&
                                  Catch::Contains("kubevirt-migration-pdb-kubevirt-evacuation-abcde"));
  }

  // Two failing: two causes, the KubeVirt text first.
  auto two = plus(one_control_plane(), blocking_pdb());
  two.push_back(kubevirt(false));
  const Decision d = decide(two, upgrade());
  CHECK(d.code == 422);
  REQUIRE(d.causes.size() == 2);
  CHECK_THAT(d.message, Catch::StartsWith(kKubeVirtPrefix));
  CHECK(d.message == d.causes[0].message + "; " + d.causes[1].message);
  CHECK_THAT(d.causes[1].message, Catch::StartsWith(kPdbPrefix));

  // One failing: exactly its own text.
  const Decision only_pdb = decide(plus(one_control_plane(), blocking_pdb()), upgrade());
  REQUIRE(only_pdb.causes.size() == 1);
  CHECK(only_pdb.message == only_pdb.causes[0].message);
  CHECK_THAT(only_pdb.message, Catch::StartsWith(kPdbPrefix));

  // Fixed, the same cluster passes.
  auto fixed = plus(one_control_plane(),
                    {pod("default", "web-0", "web"), pdb("default", "web", "web", {{"maxUnavailable", 1}})});
  fixed.push_back(kubevirt(true));
  fixed.push_back(volume("pvc-a", 3, "attached", "team-a", "web"));
  const Decision ok = decide(fixed, upgrade());
  CHECK(ok.allowed);
  CHECK(ok.warnings.empty());
}

TEST_CASE("upgrade-guard: skip-checks skips what it names, and reads nothing for it", "[upgrade]") {
  auto objects = plus(one_control_plane(), blocking_pdb());
  objects.push_back(kubevirt(false));
  const std::string kKubeVirtSkipped =
      "upgrade-guard: check kubevirt-placement skipped (hci-admission.io/skip-checks)";
  const std::string kPdbSkipped =
      "upgrade-guard: check pod-disruption-budgets skipped (hci-admission.io/skip-checks)";

  SECTION("kubevirt-placement") {
    RecordingCluster view(objects);
    const Decision d =
        decide_with(view, upgrade({{UpgradeGuard::kSkipChecksAnnotation, "kubevirt-placement"}}));
    CHECK_FALSE(d.allowed);  // the PDB still refuses
    CHECK(d.code == 422);
    REQUIRE(d.causes.size() == 1);
    CHECK_THAT(d.message, Catch::StartsWith(kPdbPrefix) && !Catch::Contains("KubeVirt "));
    REQUIRE(d.warnings.size() == 1);
    CHECK_THAT(d.warnings[0], Catch::Contains("check kubevirt-placement skipped"));
    CHECK(d.warnings[0] == kKubeVirtSkipped);
    auto expected = kAllReads;
    expected.erase("kubevirts");
    CHECK(view.listed_set() == expected);
    CHECK(view.listed().size() == expected.size());

    // Only the KubeVirt failing: skipping it allows.
    const Decision allowed = decide(plus(one_control_plane(), {kubevirt(false)}),
                                    upgrade({{UpgradeGuard::kSkipChecksAnnotation, "kubevirt-placement"}}));
    CHECK(allowed.allowed);
    REQUIRE(allowed.warnings.size() == 1);
    CHECK(allowed.warnings[0] == kKubeVirtSkipped);
  }
  SECTION("pod-disruption-budgets") {
    RecordingCluster view(objects);
    const Decision d =
        decide_with(view, upgrade({{UpgradeGuard::kSkipChecksAnnotation, "pod-disruption-budgets"}}));
    CHECK(d.code == 422);
    REQUIRE(d.causes.size() == 1);
    CHECK_THAT(d.message, Catch::StartsWith(kKubeVirtPrefix) && !Catch::Contains(kPdbPrefix));
    REQUIRE(d.warnings.size() == 1);
    CHECK(d.warnings[0] == kPdbSkipped);
    CHECK(view.listed_set() ==
          std::set<std::string>{"kubevirts", "nodes", "upgradeplans", "upgrades", "volumes"});
    CHECK(view.listed().size() == 5);
  }
  SECTION("both, with whitespace and empty items") {
    for (const char *value :
         {" kubevirt-placement , ,pod-disruption-budgets", "pod-disruption-budgets,kubevirt-placement,",
          "kubevirt-placement,kubevirt-placement, pod-disruption-budgets"}) {
      INFO("skip-checks: \"" << value << "\"");
      RecordingCluster view(objects);
      const Decision d = decide_with(view, upgrade({{UpgradeGuard::kSkipChecksAnnotation, value}}));
      CHECK(d.allowed);
      CHECK(d.warnings == std::vector<std::string>{kKubeVirtSkipped, kPdbSkipped});
      CHECK(view.listed_set() == std::set<std::string>{"nodes", "upgradeplans", "upgrades", "volumes"});
    }
    // Skipping does not touch single-replica volumes.
    const Decision volumes = decide(
        plus(objects, {volume("pvc-a", 1, "detached", "a", "b")}),
        upgrade({{UpgradeGuard::kSkipChecksAnnotation, "kubevirt-placement, pod-disruption-budgets"}}));
    CHECK(volumes.code == 422);
    CHECK(volumes.message == kAnyPrefix + "a/b");
    CHECK(volumes.warnings == std::vector<std::string>{kKubeVirtSkipped, kPdbSkipped});
  }
  SECTION("empty or blank is no skip") {
    for (const char *value : {"", " ", " , ,"}) {
      INFO("skip-checks: \"" << value << "\"");
      RecordingCluster view(objects);
      const Decision d = decide_with(view, upgrade({{UpgradeGuard::kSkipChecksAnnotation, value}}));
      CHECK(d.code == 422);
      CHECK(d.causes.size() == 2);
      CHECK(d.warnings.empty());
      CHECK(view.listed_set() == kAllReads);
    }
  }
  SECTION("unknown names are refused after concurrent-upgrades, reading nothing else") {
    for (const char *value : {"bogus", "kubevirt-placement, bogus", "concurrent-upgrades",
                              "single-replica-volumes,pod-disruption-budgets"}) {
      INFO("skip-checks: \"" << value << "\"");
      RecordingCluster view(objects);
      for (const Json &kind : {kUpgradeKind, kPlanKind}) {
        const Json annotations = {{UpgradeGuard::kSkipChecksAnnotation, value}};
        const Decision d =
            decide_with(view, kind == kPlanKind ? upgrade_plan(annotations) : upgrade(annotations), kind);
        CHECK_FALSE(d.allowed);
        CHECK(d.code == 422);
        CHECK(d.reason == "Invalid");
        REQUIRE(d.causes.size() == 1);
        CHECK_THAT(
            d.message,
            Catch::Contains("hci-admission.io/skip-checks") && Catch::Contains("unknown checks") &&
                Catch::EndsWith("the checks it can skip are kubevirt-placement, pod-disruption-budgets"));
      }
      CHECK(view.listed_set() == std::set<std::string>{"upgradeplans", "upgrades"});
    }
    RecordingCluster view(objects);
    const Decision d = decide_with(
        view, upgrade({{UpgradeGuard::kSkipChecksAnnotation, " bogus ,kubevirt-placement,, other"}}));
    CHECK(d.message ==
          "annotation hci-admission.io/skip-checks names unknown checks \"bogus\", \"other\"; the checks it "
          "can "
          "skip are kubevirt-placement, pod-disruption-budgets");
    // An upgrade in progress is named first (409), as Harvester's own
    // check comes first; skipWebhook bypasses the annotations as before.
    RecordingCluster busy(plus(objects, {existing_upgrade("u", "UpgradingNodes")}));
    CHECK(decide_with(busy, upgrade({{UpgradeGuard::kSkipChecksAnnotation, "bogus"}})).code == 409);
    RecordingCluster bypassed(objects);
    const Decision e = decide_with(bypassed, upgrade({{UpgradeGuard::kSkipChecksAnnotation, "bogus"},
                                                      {UpgradeGuard::kSkipDetachedAnnotation, "maybe"},
                                                      {UpgradeGuard::kSkipWebhookAnnotation, "true"}}));
    CHECK(e.allowed);
    CHECK(bypassed.listed_set() == std::set<std::string>{"upgradeplans", "upgrades"});
  }
  SECTION("a value that is not a string is refused") {
    RecordingCluster view(objects);
    const auto e = UpgradeGuard(view, {}).evaluate({{UpgradeGuard::kSkipChecksAnnotation, 3}}, soon());
    CHECK(e.decision.code == 422);
    CHECK_THAT(e.decision.message, Catch::Contains("unknown checks"));
    CHECK(view.listed_set() == std::set<std::string>{"upgradeplans", "upgrades"});
  }
  SECTION("skipWebhook lists only the upgrades") {
    for (const Json &annotations : {Json{{UpgradeGuard::kSkipWebhookAnnotation, "true"}},
                                    Json{{UpgradeGuard::kSkipWebhookAnnotation, "true"},
                                         {UpgradeGuard::kSkipChecksAnnotation, "kubevirt-placement"}}}) {
      INFO("annotations: " << annotations.dump());
      RecordingCluster view(plus(objects, {volume("pvc-a", 1, "attached", "a", "b")}));
      const Decision d = decide_with(view, upgrade(annotations));
      CHECK(d.allowed);
      REQUIRE(d.warnings.size() == 1);
      CHECK_THAT(d.warnings[0],
                 Catch::Contains("bypassed") && Catch::Contains("concurrent upgrades still checked"));
      CHECK(view.listed() == std::vector<std::string>{"upgradeplans", "upgrades"});
    }
  }
  SECTION("nothing skipped: each of the eight read once") {
    RecordingCluster view(objects);
    decide_with(view, upgrade());
    CHECK(view.listed() == std::vector<std::string>{kAllReads.begin(), kAllReads.end()});
  }
}

TEST_CASE("upgrade-guard: kinds not served count as none; other read failures refuse", "[upgrade]") {
  using Failure = RecordingCluster::Failure;
  const auto clean = plus(one_control_plane(), {kubevirt(true)});
  const auto single_replica = plus(clean, {volume("pvc-a", 1, "attached", "team-a", "web")});

  SECTION("optional kinds not served") {
    const std::vector<std::vector<std::string>> missing = {
        {"kubevirts"},
        {"instancemanagers"},
        {"upgrades"},
        {"upgradeplans"},
        {"kubevirts", "instancemanagers", "upgrades", "upgradeplans"}};
    for (const auto &resources : missing) {
      std::string names;
      for (const auto &r : resources) names += r + " ";
      INFO("not served: " << names);
      RecordingCluster ok(clean);
      RecordingCluster refused(single_replica);
      for (const auto &r : resources) {
        ok.fail(r, Failure::NotServed);
        refused.fail(r, Failure::NotServed);
      }
      const Decision allowed = decide_with(ok, upgrade());
      CHECK(allowed.allowed);
      CHECK(allowed.warnings.empty());
      const Decision denied = decide_with(refused, upgrade());
      CHECK(denied.code == 422);
      CHECK(denied.message == kAnyPrefix + "team-a/web");
      CHECK(ok.listed_set() == kAllReads);  // asked, then counted as none
    }
    // Upgrades not served do not hide a plan in progress, and the other way round.
    RecordingCluster plans(plus(clean, {existing_plan("p", "True", "NodeUpgrading")}));
    plans.fail("upgrades", Failure::NotServed);
    CHECK(decide_with(plans, upgrade()).code == 409);
    RecordingCluster upgrades(plus(clean, {existing_upgrade("u", "UpgradingNodes")}));
    upgrades.fail("upgradeplans", Failure::NotServed);
    CHECK(decide_with(upgrades, upgrade()).code == 409);
    // A KubeVirt CRD missing: nothing to place.
    RecordingCluster no_kubevirt(plus(one_control_plane(), {kubevirt(false)}));
    no_kubevirt.fail("kubevirts", Failure::NotServed);
    CHECK(decide_with(no_kubevirt, upgrade()).allowed);
  }
  SECTION("required kinds not served refuse") {
    for (const char *resource : {"volumes", "nodes", "pods", "poddisruptionbudgets"}) {
      INFO("not served: " << resource);
      RecordingCluster view(clean);
      view.fail(resource, Failure::NotServed);
      const Decision d = decide_with(view, upgrade());
      CHECK_FALSE(d.allowed);
      CHECK(d.code == 503);
      CHECK(d.reason == "ServiceUnavailable");
      CHECK_THAT(d.message, Catch::StartsWith("upgrade-guard could not read the cluster: ") &&
                                Catch::Contains(std::string(" ") + resource) && Catch::Contains("404"));
    }
  }
  SECTION("a read error on pods") {
    RecordingCluster view(clean);
    view.fail("pods", Failure::ReadError);
    const Decision d = decide_with(view, upgrade());
    CHECK_FALSE(d.allowed);
    CHECK(d.code == 503);
    CHECK(d.reason == "ServiceUnavailable");
    CHECK(d.message == "upgrade-guard could not read the cluster: GET v1 pods: connection refused");
    // Not read when its check is skipped, so no refusal.
    RecordingCluster skipped(clean);
    skipped.fail("pods", Failure::ReadError);
    CHECK(decide_with(skipped, upgrade({{UpgradeGuard::kSkipChecksAnnotation, "pod-disruption-budgets"}}))
              .allowed);
  }
  SECTION("a read error on an optional kind is still a read error") {
    for (const char *resource : {"kubevirts", "instancemanagers"}) {
      INFO("failing: " << resource);
      RecordingCluster view(clean);
      view.fail(resource, Failure::ReadError);
      const Decision d = decide_with(view, upgrade());
      CHECK(d.code == 503);
      CHECK_THAT(d.message, Catch::Contains(resource) && Catch::Contains("connection refused"));
    }
  }
  SECTION("every failed read is named, in one refusal") {
    RecordingCluster view(clean);
    view.fail("pods", Failure::ReadError).fail("volumes", Failure::NotServed);
    const Decision d = decide_with(view, upgrade());
    CHECK(d.code == 503);
    CHECK_THAT(d.message, Catch::Contains("longhorn.io/v1beta2 volumes in longhorn-system") &&
                              Catch::Contains("; GET v1 pods: connection refused"));
  }
  SECTION("upgradeplans unreadable refuses whatever else would fail") {
    auto failing = plus(one_control_plane(), blocking_pdb());
    failing.push_back(kubevirt(false));
    failing.push_back(volume("pvc-a", 1, "attached", "team-a", "web"));
    for (const Json &annotations : {Json::object(), Json{{UpgradeGuard::kSkipWebhookAnnotation, "true"}}}) {
      INFO("annotations: " << annotations.dump());
      for (const auto &objects : {clean, failing}) {
        RecordingCluster view(objects);
        view.fail("upgradeplans", Failure::ReadError);
        for (const Json &kind : {kUpgradeKind, kPlanKind}) {
          const Decision d =
              decide_with(view, kind == kPlanKind ? upgrade_plan(annotations) : upgrade(annotations), kind);
          CHECK_FALSE(d.allowed);
          CHECK(d.code == 503);
          CHECK(d.message ==
                "upgrade-guard could not read the cluster: GET management.harvesterhci.io/v1beta1 "
                "upgradeplans: "
                "connection refused");
        }
      }
    }
    RecordingCluster upgrades(failing);
    upgrades.fail("upgrades", Failure::ReadError);
    const Decision d = decide_with(upgrades, upgrade());
    CHECK(d.code == 503);
    CHECK_THAT(d.message, Catch::Contains("harvesterhci.io/v1beta1 upgrades in harvester-system"));
  }
}

TEST_CASE("upgrade-guard: a single-node cluster skips checks 1-3, not concurrent upgrades", "[upgrade]") {
  std::vector<Json> objects = {control_plane_node("n1"), volume("pvc-a", 1, "attached", "team-a", "web"),
                               kubevirt(false), pod("default", "web-0", "web"),
                               pdb("default", "web", "web", {{"maxUnavailable", 0}})};
  for (const Json &kind : {kUpgradeKind, kPlanKind}) {
    const Decision d =
        decide_with(StaticClusterView(objects), kind == kPlanKind ? upgrade_plan() : upgrade(), kind);
    CHECK(d.allowed);
    REQUIRE(d.warnings.size() == 1);
    CHECK(d.warnings[0] ==
          "upgrade-guard: single-node cluster, single-replica volumes, KubeVirt placement and "
          "PodDisruptionBudgets not checked");
  }
  const auto e = UpgradeGuard(StaticClusterView(objects), {}).evaluate(Json::object(), soon());
  CHECK(e.nodes == 1);
  CHECK(states_of(e) == std::vector<UpgradeGuard::CheckState>{
                            UpgradeGuard::CheckState::Passed, UpgradeGuard::CheckState::Skipped,
                            UpgradeGuard::CheckState::Skipped, UpgradeGuard::CheckState::Skipped});
  for (size_t i = 1; i < e.checks.size(); ++i) CHECK(e.checks[i].message == "single-node cluster");

  for (const Json &busy :
       {existing_upgrade("hvst-upgrade-abc", "UpgradingNodes"), existing_plan("p", "True", "x")}) {
    const Decision d = decide(plus(objects, {busy}), upgrade());
    CHECK_FALSE(d.allowed);
    CHECK(d.code == 409);
    CHECK(d.reason == "Conflict");
    CHECK(d.warnings.empty());
  }
}

TEST_CASE("upgrade-guard: evaluate reports each check", "[upgrade]") {
  using State = UpgradeGuard::CheckState;
  const std::vector<std::string> kOrder = {"concurrent-upgrades", "single-replica-volumes",
                                           "kubevirt-placement", "pod-disruption-budgets"};
  const auto names_of = [](const UpgradeGuard::Evaluation &e) {
    std::vector<std::string> out;
    for (const auto &c : e.checks) out.push_back(c.name);
    return out;
  };

  SECTION("all passed") {
    StaticClusterView view(
        plus(one_control_plane(), {kubevirt(true), volume("pvc-1", 3, "attached", "a", "b")}));
    const auto e = UpgradeGuard(view, {}).evaluate(Json::object(), soon());
    CHECK(e.decision.allowed);
    CHECK(names_of(e) == kOrder);
    CHECK(states_of(e) == std::vector<State>(4, State::Passed));
    for (const auto &c : e.checks) {
      CHECK(c.objects.empty());
      CHECK(c.message.empty());
    }
    CHECK(e.nodes == 3);
    CHECK(e.single_replica.empty());
  }
  SECTION("three failed, objects named") {
    auto objects = plus(one_control_plane(), blocking_pdb());
    objects.push_back(kubevirt(false));
    objects.push_back(volume("pvc-b", 1, "detached", "team-b", "db"));
    objects.push_back(volume("pvc-a", 1, "attached", "team-a", "web"));
    StaticClusterView view(objects);
    const auto e = UpgradeGuard(view, {}).evaluate(Json::object(), soon());
    CHECK(names_of(e) == kOrder);
    CHECK(states_of(e) == std::vector<State>{State::Passed, State::Failed, State::Failed, State::Failed});
    CHECK(e.decision.code == 422);
    REQUIRE(e.decision.causes.size() == 3);
    for (size_t i = 1; i < 4; ++i) CHECK(e.checks[i].message == e.decision.causes[i - 1].message);

    const auto &volumes = e.checks[1].objects;
    REQUIRE(volumes.size() == 2);
    CHECK(volumes[0].object == "team-a/web");
    CHECK(volumes[0].reason == "attached");
    CHECK(volumes[1].object == "team-b/db");
    CHECK(volumes[1].reason == "detached");
    REQUIRE(e.single_replica.size() == 2);
    CHECK(e.single_replica[0].name == "pvc-a");
    CHECK(e.single_replica[0].active);
    CHECK_FALSE(e.single_replica[1].active);
    // Without skipSingleReplicaDetachedVol both refuse: each is marked so
    // once, here, for precheck's "!" and its JSON.
    CHECK(e.single_replica[0].offending);
    CHECK(e.single_replica[1].offending);

    REQUIRE(e.checks[2].objects.size() == 1);
    CHECK(e.checks[2].objects[0].object == "harvester-system/kubevirt");
    CHECK_THAT(e.checks[2].objects[0].reason,
               Catch::Contains("n1 is the only schedulable control-plane node"));

    REQUIRE(e.checks[3].objects.size() == 1);
    CHECK(e.checks[3].objects[0].object == "default/web");
    CHECK(e.checks[3].objects[0].reason == "maxUnavailable 0");
    CHECK(e.nodes == 3);
  }
  SECTION("skipped by skip-checks, with detached volumes allowed") {
    auto objects = plus(one_control_plane(), blocking_pdb());
    objects.push_back(kubevirt(false));
    objects.push_back(volume("pvc-b", 1, "detached", "team-b", "db"));
    const auto e = UpgradeGuard(StaticClusterView(objects), {})
                       .evaluate({{UpgradeGuard::kSkipChecksAnnotation, "kubevirt-placement"},
                                  {UpgradeGuard::kSkipDetachedAnnotation, "true"}},
                                 soon());
    CHECK(states_of(e) == std::vector<State>{State::Passed, State::Passed, State::Skipped, State::Failed});
    CHECK(e.checks[2].message == "skipped by hci-admission.io/skip-checks");
    CHECK(e.checks[2].objects.empty());
    CHECK(e.checks[1].objects.empty());
    REQUIRE(e.single_replica.size() == 1);
    CHECK_FALSE(e.single_replica[0].offending);  // detached, allowed by the annotation
    CHECK(e.decision.code == 422);
    CHECK(e.decision.causes.size() == 1);
    CHECK(e.decision.warnings.size() == 2);  // detached volumes, and the skipped check
  }
  SECTION("an upgrade in progress: the rest not run") {
    auto objects =
        plus(one_control_plane(), {existing_upgrade("b", "UpgradingNodes"), existing_plan("a", "True", "x"),
                                   volume("pvc-a", 1, "attached", "team-a", "web")});
    const auto e = UpgradeGuard(StaticClusterView(objects), {}).evaluate(Json::object(), soon());
    CHECK(states_of(e) == std::vector<State>{State::Failed, State::NotRun, State::NotRun, State::NotRun});
    REQUIRE(e.checks[0].objects.size() == 2);
    CHECK(e.checks[0].objects[0].object == "upgrade harvester-system/b (state UpgradingNodes)");
    CHECK(e.checks[0].objects[0].reason == "in progress");
    CHECK(e.checks[0].objects[1].object == "upgradeplan a (phase x)");
    CHECK(e.checks[0].message == e.decision.message);
    CHECK(e.decision.code == 409);
  }
  SECTION("skipWebhook: the three skipped") {
    const auto e =
        UpgradeGuard(StaticClusterView(plus(three_nodes(), {volume("pvc-a", 1, "attached", "a", "b")})), {})
            .evaluate({{UpgradeGuard::kSkipWebhookAnnotation, "true"}}, soon());
    CHECK(e.decision.allowed);
    CHECK(states_of(e) == std::vector<State>{State::Passed, State::Skipped, State::Skipped, State::Skipped});
    for (size_t i = 1; i < 4; ++i) CHECK(e.checks[i].message == "bypassed by harvesterhci.io/skipWebhook");
  }
  SECTION("a bad annotation or a failed read: not run") {
    const auto bad = UpgradeGuard(StaticClusterView(three_nodes()), {})
                         .evaluate({{UpgradeGuard::kSkipDetachedAnnotation, "maybe"}}, soon());
    CHECK(bad.decision.code == 422);
    CHECK(names_of(bad) == kOrder);
    CHECK(states_of(bad) == std::vector<State>{State::Passed, State::NotRun, State::NotRun, State::NotRun});

    RecordingCluster no_pods(three_nodes());
    no_pods.fail("pods", RecordingCluster::Failure::ReadError);
    const auto e = UpgradeGuard(no_pods, {}).evaluate(Json::object(), soon());
    CHECK(e.decision.code == 503);
    CHECK(states_of(e) == std::vector<State>{State::Passed, State::NotRun, State::NotRun, State::NotRun});

    RecordingCluster no_plans(three_nodes());
    no_plans.fail("upgradeplans", RecordingCluster::Failure::ReadError);
    CHECK(states_of(UpgradeGuard(no_plans, {}).evaluate(Json::object(), soon())) ==
          std::vector<State>(4, State::NotRun));
  }
  CHECK(std::string(webhooks::to_string(State::Passed)) == "passed");
  CHECK(std::string(webhooks::to_string(State::Failed)) == "failed");
  CHECK(std::string(webhooks::to_string(State::Skipped)) == "skipped");
  CHECK(std::string(webhooks::to_string(State::NotRun)) == "not run");
}

TEST_CASE("upgrade-guard: each single-replica volume says whether it causes the refusal", "[upgrade]") {
  // Decided once by the guard; precheck's text ("!") and JSON ("offending")
  // read the flag instead of each searching the offending list by name.
  auto objects = three_nodes();
  objects.push_back(volume("vol-up", 1, "attached", "team-a", "web"));
  objects.push_back(volume("vol-down", 1, "detached", "team-b", "db"));
  StaticClusterView view(objects);
  const auto skip_detached =
      UpgradeGuard(view, {}).evaluate({{UpgradeGuard::kSkipDetachedAnnotation, "true"}}, soon());
  REQUIRE(skip_detached.single_replica.size() == 2);
  CHECK(skip_detached.single_replica[0].pvc == "team-a/web");
  CHECK(skip_detached.single_replica[0].offending);
  CHECK(skip_detached.single_replica[1].pvc == "team-b/db");
  CHECK_FALSE(skip_detached.single_replica[1].offending);
  const auto any = UpgradeGuard(view, {}).evaluate(Json::object(), soon());
  REQUIRE(any.single_replica.size() == 2);
  CHECK(any.single_replica[0].offending);
  CHECK(any.single_replica[1].offending);
}

TEST_CASE("upgrade-guard: spec covers both kinds, its options and its reads", "[upgrade]") {
  const PolicySpec spec = UpgradeGuard::spec();
  CHECK(spec.name == "upgrade-guard");
  CHECK(spec.type == PolicyType::Validating);
  CHECK(spec.reads_cluster);
  REQUIRE(spec.rules.size() == 2);
  const auto &upgrades = spec.rules[0];
  CHECK(upgrades.operations == std::vector<std::string>{"CREATE"});
  CHECK(upgrades.group == "harvesterhci.io");
  CHECK(upgrades.versions == std::vector<std::string>{"v1beta1"});
  CHECK(upgrades.resource == "upgrades");
  CHECK(upgrades.kind == "Upgrade");
  CHECK(upgrades.scope == "Namespaced");
  const auto &plans = spec.rules[1];
  CHECK(plans.operations == std::vector<std::string>{"CREATE"});
  CHECK(plans.group == "management.harvesterhci.io");
  CHECK(plans.versions == std::vector<std::string>{"v1beta1"});
  CHECK(plans.resource == "upgradeplans");
  CHECK(plans.kind == "UpgradePlan");
  CHECK(plans.scope == "Cluster");
  CHECK(plans.to_webhook_rule()["scope"] == "Cluster");
  CHECK(upgrades.to_webhook_rule()["scope"] == "Namespaced");

  // Options, and build() refusing an empty namespace.
  std::map<std::string, std::string> defaults;
  for (const auto &o : spec.options) defaults[o.flag] = o.default_value;
  CHECK(defaults == std::map<std::string, std::string>{{"kubevirt-namespace", "harvester-system"},
                                                       {"longhorn-namespace", "longhorn-system"},
                                                       {"upgrade-namespace", "harvester-system"}});
  StaticClusterView view(three_nodes());
  CHECK(spec.build(PolicyConfig(defaults, &view)) != nullptr);
  for (const char *flag : {"kubevirt-namespace", "upgrade-namespace", "longhorn-namespace"}) {
    INFO("empty --" << flag);
    auto values = defaults;
    values[flag] = "";
    try {
      spec.build(PolicyConfig(values, &view));
      FAIL("build() accepted an empty --" << flag);
    } catch (const std::invalid_argument &e) {
      CHECK(std::string(e.what()) == "--" + std::string(flag) + " must not be empty");
    }
  }
  CHECK_THROWS_AS(spec.build(PolicyConfig(defaults)), std::invalid_argument);  // no cluster

  // The built policy reads where the options say, and only what cluster_reads lists.
  REQUIRE(spec.cluster_reads.size() == 8);
  const std::set<std::string> reads(spec.cluster_reads.begin(), spec.cluster_reads.end());
  CHECK(reads == std::set<std::string>{"list nodes", "list pods", "list poddisruptionbudgets.policy",
                                       "list upgradeplans.management.harvesterhci.io",
                                       "list volumes.longhorn.io in the Longhorn namespace",
                                       "list instancemanagers.longhorn.io in the Longhorn namespace",
                                       "list kubevirts.kubevirt.io in the KubeVirt namespace",
                                       "list upgrades.harvesterhci.io in the upgrade namespace"});
  RecordingCluster recording(three_nodes());
  const auto policy = spec.build(PolicyConfig(
      {{"longhorn-namespace", "lh"}, {"kubevirt-namespace", "kv"}, {"upgrade-namespace", "up"}}, &recording));
  CHECK(run_policy(spec, *policy, upgrade(), kUpgradeKind).decision.allowed);
  CHECK(recording.described() ==
        std::set<std::string>{"harvesterhci.io/v1beta1 upgrades in up", "kubevirt.io/v1 kubevirts in kv",
                              "longhorn.io/v1beta2 instancemanagers in lh",
                              "longhorn.io/v1beta2 volumes in lh",
                              "management.harvesterhci.io/v1beta1 upgradeplans",
                              "policy/v1 poddisruptionbudgets", "v1 nodes", "v1 pods"});
  for (const auto &resource : recording.listed()) {
    INFO("listed " << resource);
    CHECK(std::any_of(spec.cluster_reads.begin(), spec.cluster_reads.end(), [&](const std::string &r) {
      return r == "list " + resource || r.rfind("list " + resource + ".", 0) == 0;
    }));
  }
}
