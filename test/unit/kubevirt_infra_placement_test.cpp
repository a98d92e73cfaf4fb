#include "kubevirt_infra_placement.hpp"
#include "policy_harness.hpp"

#include <catch2/catch.hpp>

using namespace hci_admission;
using test_support::run_policy;
using webhooks::KubeVirtInfraPlacement;

namespace {
const Json kKubeVirtKind = {{"group", "kubevirt.io"}, {"version", "v1"}, {"kind", "KubeVirt"}};

Json kubevirt(Json spec, Json annotations = Json::object()) {
  Json kv = {
      {"apiVersion", "kubevirt.io/v1"},
      {"kind", "KubeVirt"},
      {"metadata", {{"name", "kubevirt"}, {"namespace", "harvester-system"}, {"annotations", annotations}}}};
  if (!spec.is_null()) kv["spec"] = spec;
  return kv;
}
}  // namespace

TEST_CASE("kubevirt-infra-placement: table", "[kubevirt]") {
  struct Case {
    const char *name;
    Json object;
    std::string operation;
    bool patched;
    Json expected_infra;  // checked when patched
    size_t warnings;
  };
  const Json workloads = {{"nodePlacement", {{"nodeSelector", {{"a", "b"}}}}}};
  const std::vector<Case> cases = {
      {"no spec", kubevirt(nullptr), "CREATE", true, {{"nodePlacement", Json::object()}}, 0},
      {"spec without infra",
       kubevirt({{"workloads", workloads}}),
       "CREATE",
       true,
       {{"nodePlacement", Json::object()}},
       0},
      {"infra with replicas only",
       kubevirt({{"infra", {{"replicas", 2}}}}),
       "UPDATE",
       true,
       {{"replicas", 2}, {"nodePlacement", Json::object()}},
       0},
      {"infra null", kubevirt({{"infra", nullptr}}), "CREATE", true, {{"nodePlacement", Json::object()}}, 0},
      {"nodePlacement null",
       kubevirt({{"infra", {{"nodePlacement", nullptr}}}}),
       "UPDATE",
       true,
       {{"nodePlacement", Json::object()}},
       0},
      {"nodePlacement empty is kept", kubevirt({{"infra", {{"nodePlacement", Json::object()}}}}), "CREATE",
       false, nullptr, 0},
      {"nodePlacement set is kept",
       kubevirt({{"infra", {{"nodePlacement", {{"nodeSelector", {{"kubernetes.io/os", "linux"}}}}}}}}),
       "UPDATE", false, nullptr, 0},
      {"opt-out true", kubevirt(Json::object(), {{KubeVirtInfraPlacement::kOptOutAnnotation, "TRUE"}}),
       "CREATE", false, nullptr, 0},
      {"opt-out false",
       kubevirt(Json::object(), {{KubeVirtInfraPlacement::kOptOutAnnotation, "false"}}),
       "CREATE",
       true,
       {{"nodePlacement", Json::object()}},
       0},
      {"opt-out empty",
       kubevirt(Json::object(), {{KubeVirtInfraPlacement::kOptOutAnnotation, ""}}),
       "CREATE",
       true,
       {{"nodePlacement", Json::object()}},
       0},
      {"opt-out garbage warns",
       kubevirt(Json::object(), {{KubeVirtInfraPlacement::kOptOutAnnotation, "yes"}}),
       "CREATE",
       true,
       {{"nodePlacement", Json::object()}},
       1},
      {"DELETE passes", kubevirt(Json::object()), "DELETE", false, nullptr, 0},
      {"spec of the wrong type warns", kubevirt("x"), "CREATE", false, nullptr, 1},
      {"infra of the wrong type warns", kubevirt({{"infra", {1}}}), "CREATE", false, nullptr, 1},
  };
  KubeVirtInfraPlacement policy;
  const PolicySpec spec = KubeVirtInfraPlacement::spec();
  for (const auto &c : cases) {
    SECTION(c.name) {
      const auto out = run_policy(spec, policy, c.object, kKubeVirtKind, c.operation);
      CHECK(out.decision.allowed);
      CHECK(out.decision.warnings.size() == c.warnings);
      CHECK(out.decision.patch.empty() == !c.patched);
      if (c.patched) {
        REQUIRE(out.decision.patch.size() == 1);
        CHECK(out.decision.patch.operations()[0].op == "add");
        CHECK(out.patched["spec"]["infra"] == c.expected_infra);
        // Everything else is kept.
        Json rest = out.patched;
        rest["spec"].erase("infra");
        Json original_rest = c.object;
        if (original_rest.contains("spec") && original_rest["spec"].is_object())
          original_rest["spec"].erase("infra");
        if (!original_rest.contains("spec")) original_rest["spec"] = Json::object();
        CHECK(rest == original_rest);
        const auto again = run_policy(spec, policy, out.patched, kKubeVirtKind, c.operation);
        CHECK(again.decision.patch.empty());
      }
    }
  }
}

TEST_CASE("kubevirt-infra-placement: other kinds pass with a warning", "[kubevirt]") {
  KubeVirtInfraPlacement policy;
  const auto out = run_policy(KubeVirtInfraPlacement::spec(), policy, kubevirt(nullptr),
                              {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}});
  CHECK(out.decision.allowed);
  CHECK(out.decision.patch.empty());
  REQUIRE(out.decision.warnings.size() == 1);
  CHECK_THAT(out.decision.warnings[0], Catch::Contains("expects kubevirt.io/v1 KubeVirt"));
}
