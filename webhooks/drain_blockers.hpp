// Pure rules for what makes a node drain stick (domain.md §7), used by the
// upgrade guard's pod-disruption-budgets check (issue 13). Work in
// progress: not yet wired into the guard.
#pragma once

#include "hci_admission/json/json.hpp"

#include <optional>
#include <string>

namespace hci_admission::webhooks {

// Why a PodDisruptionBudget selecting `selected_pods` pods can never allow
// a disruption, or nothing: an integer minAvailable of at least the pods it
// selects, maxUnavailable 0 or "0%", minAvailable "100%", or the
// disruption controller's DisruptionAllowed=False with reason SyncFailed
// (pods whose controller has no scale: bare pods, VMI pods).
std::optional<std::string> never_allows_disruption(const Json &pdb, size_t selected_pods);

// A Longhorn instance-manager PDB (in `longhorn_namespace`, its selector's
// matchLabels carrying longhorn.io/component: instance-manager): it blocks
// by design until Longhorn removes it, so rule 1 does not judge it.
bool is_longhorn_instance_manager_pdb(const Json &pdb, const std::string &longhorn_namespace);

// KubeVirt's transient evacuation PDBs: a warning, not a refusal.
bool is_kubevirt_evacuation_pdb(const Json &pdb);

}  // namespace hci_admission::webhooks
