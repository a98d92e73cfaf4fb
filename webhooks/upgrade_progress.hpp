// The upgrade guard's concurrent-upgrades check: an upgrade already in
// progress, of either kind (domain.md §8).
#pragma once

#include "hci_admission/json/json.hpp"

#include <string>
#include <vector>

namespace hci_admission::webhooks {

// The upgrades in progress, as "upgrade NS/NAME (state S)" and
// "upgradeplan NAME (phase P)", sorted: a v1 Upgrade whose label
// harvesterhci.io/upgradeState is not Succeeded or Failed (none yet counts
// as in progress), an UpgradePlan whose condition Progressing is True.
std::vector<std::string> upgrades_in_progress(const std::vector<Json> &upgrades,
                                              const std::vector<Json> &plans);

}  // namespace hci_admission::webhooks
