#include "drain_blockers.hpp"

namespace hci_admission::webhooks {
namespace {

const Json &member_or_null(const Json &parent, const char *key) {
  static const Json kNull;
  if (!parent.is_object()) return kNull;
  const auto it = parent.find(key);
  return it == parent.end() ? kNull : *it;
}

std::string text_of(const Json &v) { return v.is_string() ? v.get<std::string>() : ""; }

bool sync_failed(const Json &pdb) {
  const Json &conditions = member_or_null(member_or_null(pdb, "status"), "conditions");
  if (!conditions.is_array()) return false;
  for (const auto &c : conditions) {
    if (text_of(member_or_null(c, "type")) == "DisruptionAllowed" &&
        text_of(member_or_null(c, "status")) == "False" &&
        text_of(member_or_null(c, "reason")) == "SyncFailed") {
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<std::string> never_allows_disruption(const Json &pdb, size_t selected_pods) {
  const Json &spec = member_or_null(pdb, "spec");
  const Json &min_available = member_or_null(spec, "minAvailable");
  const Json &max_unavailable = member_or_null(spec, "maxUnavailable");
  if (min_available.is_number_integer() && min_available.get<long long>() >= 0 &&
      static_cast<unsigned long long>(min_available.get<long long>()) >= selected_pods) {
    return "minAvailable " + std::to_string(min_available.get<long long>()) + " of " +
           std::to_string(selected_pods) + " pods";
  }
  if (text_of(min_available) == "100%") return "minAvailable 100%";
  if ((max_unavailable.is_number_integer() && max_unavailable.get<long long>() == 0) ||
      text_of(max_unavailable) == "0%") {
    return "maxUnavailable 0";
  }
  if (sync_failed(pdb)) return "DisruptionAllowed=False (SyncFailed): its pods' controller has no scale";
  return std::nullopt;
}

bool is_longhorn_instance_manager_pdb(const Json &pdb, const std::string &longhorn_namespace) {
  const Json &meta = member_or_null(pdb, "metadata");
  if (text_of(member_or_null(meta, "namespace")) != longhorn_namespace) return false;
  const Json &labels = member_or_null(member_or_null(member_or_null(pdb, "spec"), "selector"), "matchLabels");
  return text_of(member_or_null(labels, "longhorn.io/component")) == "instance-manager";
}

bool is_kubevirt_evacuation_pdb(const Json &pdb) {
  return text_of(member_or_null(member_or_null(pdb, "metadata"), "name"))
             .rfind("kubevirt-migration-pdb-kubevirt-evacuation-", 0) == 0;
}

}  // namespace hci_admission::webhooks
