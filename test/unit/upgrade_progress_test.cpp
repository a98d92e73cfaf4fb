// Check 4 of issue 13: which upgrades count as in progress.
#include "upgrade_progress.hpp"

#include <catch2/catch.hpp>

using namespace hci_admission;
using namespace hci_admission::webhooks;

namespace {

Json upgrade(const std::string &name, const std::string &state) {
  Json u = {{"metadata", {{"name", name}, {"namespace", "harvester-system"}}}};
  if (!state.empty()) u["metadata"]["labels"]["harvesterhci.io/upgradeState"] = state;
  return u;
}

Json plan(const std::string &name, const std::string &progressing, const std::string &phase) {
  return {{"metadata", {{"name", name}}},
          {"status",
           {{"currentPhase", phase},
            {"conditions",
             {{{"type", "Available"}, {"status", "True"}},
              {{"type", "Progressing"}, {"status", progressing}}}}}}};
}

}  // namespace

TEST_CASE("upgrades in progress, of either kind", "[progress]") {
  CHECK(upgrades_in_progress({}, {}).empty());
  CHECK(upgrades_in_progress({upgrade("done", "Succeeded"), upgrade("gave-up", "Failed")},
                             {plan("hvst-upgrade-old", "False", "Succeeded")})
            .empty());
  const auto running = upgrades_in_progress({upgrade("hvst-upgrade-b", "UpgradingNodes"),
                                             upgrade("hvst-upgrade-a", ""), upgrade("done", "Succeeded")},
                                            {plan("hvst-upgrade-x", "True", "NodeUpgrading"), Json::array()});
  REQUIRE(running.size() == 3);
  CHECK(running[0] == "upgrade harvester-system/hvst-upgrade-a (state not set yet)");
  CHECK(running[1] == "upgrade harvester-system/hvst-upgrade-b (state UpgradingNodes)");
  CHECK(running[2] == "upgradeplan hvst-upgrade-x (phase NodeUpgrading)");
}
