#include "upgrade_progress.hpp"

#include "policy_util.hpp"

#include <algorithm>

namespace hci_admission::webhooks {
namespace {

bool progressing(const Json &plan) {
  const Json &conditions = member_or_null(member_or_null(plan, "status"), "conditions");
  return conditions.is_array() && std::any_of(conditions.begin(), conditions.end(), [](const Json &c) {
           return text_of(member_or_null(c, "type")) == "Progressing" &&
                  text_of(member_or_null(c, "status")) == "True";
         });
}

}  // namespace

std::vector<std::string> upgrades_in_progress(const std::vector<Json> &upgrades,
                                              const std::vector<Json> &plans) {
  std::vector<std::string> out;
  for (const auto &u : upgrades) {
    const Json &meta = member_or_null(u, "metadata");
    const std::string state =
        text_of(member_or_null(member_or_null(meta, "labels"), "harvesterhci.io/upgradeState"));
    if (state == "Succeeded" || state == "Failed") continue;
    out.push_back("upgrade " + text_of(member_or_null(meta, "namespace")) + "/" +
                  text_of(member_or_null(meta, "name")) + " (state " +
                  (state.empty() ? "not set yet" : state) + ")");
  }
  for (const auto &p : plans) {
    if (!progressing(p)) continue;
    const std::string phase = text_of(member_or_null(member_or_null(p, "status"), "currentPhase"));
    out.push_back("upgradeplan " + text_of(member_or_null(member_or_null(p, "metadata"), "name")) +
                  " (phase " + (phase.empty() ? "unknown" : phase) + ")");
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace hci_admission::webhooks
