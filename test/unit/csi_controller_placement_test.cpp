#include "csi_controller_placement.hpp"
#include "policy_harness.hpp"

#include <catch2/catch.hpp>

using namespace hci_admission;
using test_support::run_policy;
using webhooks::CsiControllerPlacement;

namespace {

const Json kPodKind = {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}};
const std::vector<std::string> kControlPlane = {"node-role.kubernetes.io/control-plane",
                                                "node-role.kubernetes.io/controlplane",
                                                "node-role.kubernetes.io/master"};

std::unique_ptr<Policy> default_policy() {
  const PolicySpec s = CsiControllerPlacement::spec();
  std::map<std::string, std::string> values;
  for (const auto &o : s.options) values[o.flag] = o.default_value;
  return s.build(PolicyConfig(values));
}

Json controller_pod(Json spec = Json::object()) {
  return {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"generateName", "harvester-csi-driver-controllers-"},
        {"labels", {{"app.kubernetes.io/name", "harvester-csi-driver"}, {"component", "csi-controllers"}}}}},
      {"spec", spec}};
}

Json term(std::vector<Json> exprs) { return {{"matchExpressions", exprs}}; }
Json expr(const std::string &key, const std::string &op, std::vector<std::string> values = {}) {
  Json e = {{"key", key}, {"operator", op}};
  if (!values.empty()) e["values"] = values;
  return e;
}
Json required(std::vector<Json> terms) {
  return {
      {"nodeAffinity", {{"requiredDuringSchedulingIgnoredDuringExecution", {{"nodeSelectorTerms", terms}}}}}};
}

bool requires_control_plane(const Json &t) {
  if (!t.contains("matchExpressions")) return false;
  for (const auto &e : t["matchExpressions"]) {
    if ((e["operator"] == "Exists" || e["operator"] == "In") &&
        std::find(kControlPlane.begin(), kControlPlane.end(), e["key"]) != kControlPlane.end()) {
      return true;
    }
  }
  return false;
}

bool is_empty_term(const Json &t) {
  return (!t.contains("matchExpressions") || t["matchExpressions"].empty()) &&
         (!t.contains("matchFields") || t["matchFields"].empty());
}

// The properties every outcome must have, whatever the input.
void check_invariants(const Json &before, const Json &after) {
  const Json &spec = after["spec"];
  const Json &terms =
      spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
  REQUIRE(terms.is_array());
  REQUIRE_FALSE(terms.empty());
  for (const auto &t : terms) {
    INFO("term: " << t.dump());
    CHECK((requires_control_plane(t) || is_empty_term(t)));
  }
  // Existing tolerations are kept, in order, as a prefix.
  const Json old_tolerations = before["spec"].value("tolerations", Json::array());
  REQUIRE(spec["tolerations"].size() >= old_tolerations.size());
  for (size_t i = 0; i < old_tolerations.size(); ++i) CHECK(spec["tolerations"][i] == old_tolerations[i]);
  // Every original term's expressions survive in some term.
  const Json old_terms = before["spec"]
                             .value("affinity", Json::object())
                             .value("nodeAffinity", Json::object())
                             .value("requiredDuringSchedulingIgnoredDuringExecution", Json::object())
                             .value("nodeSelectorTerms", Json::array());
  for (const auto &old_term : old_terms) {
    for (const auto &e : old_term.value("matchExpressions", Json::array())) {
      CHECK(std::any_of(terms.begin(), terms.end(), [&](const Json &t) {
        const auto exprs = t.value("matchExpressions", Json::array());
        return std::find(exprs.begin(), exprs.end(), e) != exprs.end();
      }));
    }
  }
}

}  // namespace

TEST_CASE("csi-controller-placement: pod without affinity gets the chart's placement", "[csi]") {
  auto policy = default_policy();
  const Json pod = controller_pod({{"containers", Json::array()}});
  const auto out = run_policy(CsiControllerPlacement::spec(), *policy, pod, kPodKind);
  REQUIRE(out.decision.allowed);
  // One add creates /spec/affinity with both parts; one more adds tolerations.
  REQUIRE(out.decision.patch.size() == 2);
  CHECK(out.decision.patch.operations()[0].path == "/spec/affinity");
  const Json &spec = out.patched["spec"];
  const Json &terms =
      spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
  REQUIRE(terms.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(terms[i] == term({expr(kControlPlane[i], "Exists")}));
  CHECK(spec["tolerations"] ==
        Json::parse(
            R"([{"key":"node-role.kubernetes.io/control-plane","operator":"Exists","effect":"NoSchedule"},
                        {"key":"node-role.kubernetes.io/etcd","operator":"Exists","effect":"NoExecute"}])"));
  const Json &anti = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
  REQUIRE(anti.size() == 1);
  CHECK(anti[0]["weight"] == 100);
  CHECK(anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname");
  CHECK(anti[0]["podAffinityTerm"]["labelSelector"]["matchExpressions"] ==
        Json::parse(R"([{"key":"app.kubernetes.io/name","operator":"In","values":["harvester-csi-driver"]},
                        {"key":"component","operator":"In","values":["csi-controllers"]}])"));
  CHECK(spec["containers"] == Json::array());
}

TEST_CASE("csi-controller-placement: table of pod shapes", "[csi]") {
  struct Case {
    const char *name;
    const char *spec;       // the pod spec, as JSON
    size_t expected_terms;  // required node selector terms afterwards
    size_t expected_added_tolerations;
    bool anti_affinity_added;
  };
#define REQUIRED(terms)                                                                                          \
  R"({"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":)" terms \
  "}}}}"
#define ZONE(z) R"({"key":"topology.kubernetes.io/zone","operator":"In","values":[")" z R"("]})"
#define CP_IN R"({"key":"node-role.kubernetes.io/control-plane","operator":"In","values":["true"]})"
  const std::vector<Case> cases = {
      {"one required term is split per control-plane label",
       REQUIRED("[{\"matchExpressions\":[" ZONE("a") "]}]"), 3, 2, true},
      {"two required terms become six",
       REQUIRED("[{\"matchExpressions\":[" ZONE("a") "]},{\"matchExpressions\":[" ZONE("b") "]}]"), 6, 2,
       true},
      {"a term with control-plane In is already confined", REQUIRED("[{\"matchExpressions\":[" CP_IN "]}]"),
       1, 2, true},
      {"only the unconfined term is split",
       REQUIRED("[{\"matchExpressions\":[" CP_IN "]},{\"matchExpressions\":[" ZONE("a") "]}]"), 4, 2, true},
      {"an empty term matches nothing and stays", REQUIRED("[{},{\"matchExpressions\":[" ZONE("a") "]}]"), 4,
       2, true},
      {"a matchFields-only term gets expressions",
       REQUIRED(R"([{"matchFields":[{"key":"metadata.name","operator":"In","values":["n1"]}]}])"), 3, 2,
       true},
      {"empty nodeSelectorTerms is filled", REQUIRED("[]"), 3, 2, true},
      {"preferred node affinity only is kept",
       R"({"affinity":{"nodeAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":1,"preference":{"matchExpressions":[)" ZONE(
           "a") "]}}]}}}",
       3, 2, true},
      {"tolerate-everything covers both taints", R"({"tolerations":[{"operator":"Exists"}]})", 3, 0, true},
      {"a key-only toleration covers every effect",
       R"({"tolerations":[{"key":"node-role.kubernetes.io/control-plane","operator":"Exists"},
                          {"key":"node-role.kubernetes.io/etcd","operator":"Exists"}]})",
       3, 0, true},
      {"the chart's Equal tolerations without value count",
       R"({"tolerations":[{"key":"node-role.kubernetes.io/control-plane","operator":"Equal","effect":"NoSchedule"},
                          {"key":"node-role.kubernetes.io/etcd","effect":"NoExecute"}]})",
       3, 0, true},
      {"a wrong effect or a value does not count",
       R"({"tolerations":[{"key":"node-role.kubernetes.io/etcd","operator":"Exists","effect":"NoSchedule"},
                          {"key":"node-role.kubernetes.io/control-plane","value":"true","effect":"NoSchedule"}]})",
       3, 2, true},
      {"existing pod anti-affinity is kept",
       R"({"affinity":{"podAntiAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[
            {"topologyKey":"kubernetes.io/hostname","labelSelector":{"matchLabels":{"x":"y"}}}]}}})",
       3, 2, false},
      {"empty pod anti-affinity gets the chart's", R"({"affinity":{"podAntiAffinity":{}}})", 3, 2, true},
      {"an empty affinity is filled in place", R"({"affinity":{},"tolerations":[]})", 3, 2, true},
  };
#undef REQUIRED
#undef ZONE
#undef CP_IN
  auto policy = default_policy();
  for (const auto &c : cases) {
    SECTION(c.name) {
      const Json pod_spec = Json::parse(c.spec);
      const Json pod = controller_pod(pod_spec);
      const auto out = run_policy(CsiControllerPlacement::spec(), *policy, pod, kPodKind);
      REQUIRE(out.decision.allowed);
      CHECK(out.decision.warnings.empty());
      check_invariants(pod, out.patched);
      const Json &spec = out.patched["spec"];
      CHECK(spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                ["nodeSelectorTerms"]
                    .size() == c.expected_terms);
      const size_t before = pod_spec.value("tolerations", Json::array()).size();
      CHECK(spec["tolerations"].size() - before == c.expected_added_tolerations);
      const Json anti = spec["affinity"].value("podAntiAffinity", Json::object());
      CHECK(anti.contains("preferredDuringSchedulingIgnoredDuringExecution") == c.anti_affinity_added);
      for (const auto &op : out.decision.patch.operations()) {
        INFO("op " << op.op << " " << op.path);
        CHECK(op.op == "add");  // add-only: nothing replaced or removed
      }
      // Idempotent: the policy applied to its own output changes nothing.
      const auto again = run_policy(CsiControllerPlacement::spec(), *policy, out.patched, kPodKind);
      CHECK(again.decision.patch.empty());
    }
  }
}

// A pod without affinity or tolerations gets values written once, when the
// policy is built; null members read as absent, and an empty affinity built
// up step by step ends the same.
TEST_CASE("csi-controller-placement: null, absent and empty placement end the same", "[csi]") {
  auto policy = default_policy();
  const auto spec = CsiControllerPlacement::spec();
  const auto absent = run_policy(spec, *policy, controller_pod({{"containers", Json::array()}}), kPodKind);
  const auto null = run_policy(
      spec, *policy,
      controller_pod({{"containers", Json::array()}, {"affinity", nullptr}, {"tolerations", nullptr}}),
      kPodKind);
  const auto empty = run_policy(
      spec, *policy,
      controller_pod(
          {{"containers", Json::array()}, {"affinity", Json::object()}, {"tolerations", Json::array()}}),
      kPodKind);
  REQUIRE(absent.decision.patch.size() == 2);
  CHECK(null.decision.patch.dump() == absent.decision.patch.dump());
  CHECK(null.patched == absent.patched);
  CHECK(empty.patched == absent.patched);
  CHECK(empty.decision.patch.size() == 4);  // nodeAffinity, podAntiAffinity, two tolerations
}

TEST_CASE("csi-controller-placement: leaves alone what is not a controller pod", "[csi]") {
  auto policy = default_policy();
  const auto spec = CsiControllerPlacement::spec();
  Json plugin = controller_pod();
  plugin["metadata"]["labels"]["component"] = "csi-driver";
  CHECK(run_policy(spec, *policy, plugin, kPodKind).decision.patch.empty());
  Json other = controller_pod();
  other["metadata"].erase("labels");
  CHECK(run_policy(spec, *policy, other, kPodKind).decision.patch.empty());

  // UPDATE: pod placement is immutable, so nothing is patched.
  CHECK(run_policy(spec, *policy, controller_pod(), kPodKind, "UPDATE").decision.patch.empty());

  const auto wrong = run_policy(spec, *policy, controller_pod(),
                                {{"group", "apps"}, {"version", "v1"}, {"kind", "Deployment"}});
  CHECK(wrong.decision.allowed);
  CHECK(wrong.decision.patch.empty());
  REQUIRE(wrong.decision.warnings.size() == 1);
  CHECK_THAT(wrong.decision.warnings[0], Catch::Contains("apps/v1 Deployment"));
}

TEST_CASE("csi-controller-placement: malformed pods get a warning, not a crash", "[csi]") {
  auto policy = default_policy();
  const auto spec = CsiControllerPlacement::spec();
  for (const Json &bad_spec :
       {Json{{"affinity", "x"}}, Json{{"tolerations", {{"a", 1}}}},
        Json{{"affinity",
              {{"nodeAffinity",
                {{"requiredDuringSchedulingIgnoredDuringExecution", {{"nodeSelectorTerms", {1, 2}}}}}}}}}}) {
    INFO("spec: " << bad_spec.dump());
    const auto out = run_policy(spec, *policy, controller_pod(bad_spec), kPodKind);
    CHECK(out.decision.allowed);
    CHECK(out.decision.patch.empty());
    CHECK(out.decision.warnings.size() == 1);
  }
  Json no_spec = controller_pod();
  no_spec.erase("spec");
  CHECK(run_policy(spec, *policy, no_spec, kPodKind).decision.warnings.size() == 1);
  CHECK(run_policy(spec, *policy, nullptr, kPodKind).decision.warnings.size() == 1);
}

TEST_CASE("csi-controller-placement: selector and control-plane labels are configurable", "[csi]") {
  const PolicySpec s = CsiControllerPlacement::spec();
  auto policy = s.build(PolicyConfig({{"csi-controller-selector", "app=my-csi"},
                                      {"control-plane-labels", "node-role.kubernetes.io/control-plane"}}));
  Json pod = controller_pod({{"affinity", required({term({expr("zone", "Exists")})})}});
  CHECK(run_policy(s, *policy, pod, kPodKind).decision.patch.empty());  // labels no longer match
  pod["metadata"]["labels"] = {{"app", "my-csi"}};
  const auto out = run_policy(s, *policy, pod, kPodKind);
  const Json &terms = out.patched["spec"]["affinity"]["nodeAffinity"]
                                 ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
  REQUIRE(terms.size() == 1);
  CHECK(terms[0] == term({expr("zone", "Exists"), expr("node-role.kubernetes.io/control-plane", "Exists")}));
  CHECK(out.patched["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
                   [0]["podAffinityTerm"]["labelSelector"] ==
        Json::parse(R"({"matchExpressions":[{"key":"app","operator":"In","values":["my-csi"]}]})"));

  // A selector of more labels than one pass over the pod's reads: every
  // one must match, the last as much as the first.
  std::string many;
  Json labels = Json::object();
  for (int i = 0; i < 10; ++i) {
    const std::string key = "l" + std::to_string(i);
    many += (i ? "," : "") + key + (i == 4 ? std::string() : "=v" + std::to_string(i));
    labels[key] = "v" + std::to_string(i);
  }
  auto strict = s.build(PolicyConfig({{"csi-controller-selector", many}, {"control-plane-labels", "cp"}}));
  Json labelled = controller_pod();
  labelled["metadata"]["labels"] = labels;
  CHECK_FALSE(run_policy(s, *strict, labelled, kPodKind).decision.patch.empty());
  for (const char *key : {"l0", "l4", "l9"}) {
    for (const Json &value : {Json("other"), Json(nullptr)}) {
      INFO(key << " = " << value.dump());
      Json off = labelled;
      if (value.is_null()) {
        off["metadata"]["labels"].erase(key);
      } else if (std::string(key) != "l4") {  // l4 only has to exist
        off["metadata"]["labels"][key] = value;
      } else {
        continue;
      }
      CHECK(run_policy(s, *strict, off, kPodKind).decision.patch.empty());
    }
  }

  CHECK_THROWS_AS(s.build(PolicyConfig({{"csi-controller-selector", ""}, {"control-plane-labels", "x"}})),
                  std::invalid_argument);
  CHECK_THROWS_AS(
      s.build(PolicyConfig({{"csi-controller-selector", "a=b"}, {"control-plane-labels", " , "}})),
      std::invalid_argument);
}
