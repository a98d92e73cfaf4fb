#include "upgrade_progress.hpp"

#include <algorithm>

namespace hci_admission::webhooks {
namespace {

const Json &at(const Json &parent, const char *key) {
  static const Json kNull;
  if (!parent.is_object()) return kNull;
  const auto it = parent.find(key);
  return it == parent.end() ? kNull : *it;
}

std::string text(const Json &v) { return v.is_string() ? v.get<std::string>() : ""; }

bool progressing(const Json &plan) {
  const Json &conditions = at(at(plan, "status"), "conditions");
  return conditions.is_array() && std::any_of(conditions.begin(), conditions.end(), [](const Json &c) {
           return text(at(c, "type")) == "Progressing" && text(at(c, "status")) == "True";
         });
}

}  // namespace

std::vector<std::string> upgrades_in_progress(const std::vector<Json> &upgrades,
                                              const std::vector<Json> &plans) {
  std::vector<std::string> out;
  for (const auto &u : upgrades) {
    const Json &meta = at(u, "metadata");
    const std::string state = text(at(at(meta, "labels"), "harvesterhci.io/upgradeState"));
    if (state == "Succeeded" || state == "Failed") continue;
    out.push_back("upgrade " + text(at(meta, "namespace")) + "/" + text(at(meta, "name")) + " (state " +
                  (state.empty() ? "not set yet" : state) + ")");
  }
  for (const auto &p : plans) {
    if (!progressing(p)) continue;
    const std::string phase = text(at(at(p, "status"), "currentPhase"));
    out.push_back("upgradeplan " + text(at(at(p, "metadata"), "name")) + " (phase " +
                  (phase.empty() ? "unknown" : phase) + ")");
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace hci_admission::webhooks
