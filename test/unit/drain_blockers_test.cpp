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
