#include "pvc_cleanup_guard.hpp"

#include "policy_util.hpp"

#include <algorithm>
#include <set>

namespace hci_admission::webhooks {
namespace {

// A refusal names this many PVCs.
constexpr size_t kNamesInMessage = 50;

const Json &annotation(const Json &object, const char *key) {
  return member_or_null(member_or_null(member_or_null(object, "metadata"), "annotations"), key);
}

// Set on CREATE, or added or changed on UPDATE (compared with oldObject).
bool set_or_changed(const AdmissionRequest &request, const char *key) {
  const Json &now = annotation(request.object, key);
  if (now.is_null()) return false;
  return request.operation != "UPDATE" || now != annotation(request.old_object, key);
}

// As Harvester's VM controller reads the list: split on ",", trim, skip empty.
std::vector<std::string> listed_claims(const Json &value) {
  std::vector<std::string> out;
  for (auto &name : split_list(text_of(value))) {
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
  }
  return out;
}

// The claims of a VM object: persistentVolumeClaim.claimName and
// dataVolume.name of spec.template.spec.volumes (a DataVolume's PVC has
// its name).
std::set<std::string> claims_of(const Json &vm) {
  std::set<std::string> out;
  const Json &volumes = member_or_null(
      member_or_null(member_or_null(member_or_null(vm, "spec"), "template"), "spec"), "volumes");
  if (!volumes.is_array()) return out;
  for (const auto &v : volumes) {
    const std::string claim =
        text_of(member_or_null(member_or_null(v, "persistentVolumeClaim"), "claimName"));
    if (!claim.empty()) out.insert(claim);
    const std::string data_volume = text_of(member_or_null(member_or_null(v, "dataVolume"), "name"));
    if (!data_volume.empty()) out.insert(data_volume);
  }
  return out;
}

std::string guest_cluster_of(const Json &vm) {
  return text_of(member_or_null(member_or_null(member_or_null(vm, "metadata"), "labels"),
                                PvcCleanupGuard::kGuestClusterLabel));
}

bool removes_all(const Json &vm) {
  const Json &value = annotation(vm, PvcCleanupGuard::kRemoveAllAnnotation);
  return value.is_string() && value.get<std::string>() == "true";
}

// The VM's own claims: on UPDATE those it had before this request.
// Otherwise one update could attach any PVC in the namespace as a volume
// and name it for deletion at once (neither the node driver nor the UI
// changes volumes when it writes the list).
std::set<std::string> own_claims(const AdmissionRequest &request) {
  if (request.operation == "UPDATE" && request.old_object.is_object()) return claims_of(request.old_object);
  return claims_of(request.object);
}

// The listed names that are not claims of the VM itself, in list order.
std::vector<std::string> names_not_its_own(const AdmissionRequest &request) {
  const auto own = own_claims(request);
  std::vector<std::string> out;
  for (auto &name : listed_claims(annotation(request.object, PvcCleanupGuard::kRemovedAnnotation))) {
    if (!own.count(name)) out.push_back(std::move(name));
  }
  return out;
}

bool may_remove_all(const AdmissionRequest &request, const std::vector<std::string> &allowed) {
  if (allowed.empty()) return true;
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string &who) {
    if (who.rfind("group:", 0) == 0) {
      return std::find(request.groups.begin(), request.groups.end(), who.substr(6)) != request.groups.end();
    }
    return who == request.username;
  });
}

}  // namespace

PolicySpec PvcCleanupGuard::spec() {
  PolicySpec s;
  s.name = kName;
  s.type = PolicyType::Validating;
  s.summary = "refuse PVC cleanup annotations on VMs that would delete PVCs not theirs";
  s.rules = {{{"CREATE", "UPDATE"}, "kubevirt.io", {"v1"}, "virtualmachines", "VirtualMachine"}};
  // Only VMs on which one of the two annotations is set (CREATE) or added
  // or changed (UPDATE) are sent at all: ordinary VM updates, and those
  // that remove a deleted VM's finalizers, never wait on this webhook
  // (with failurePolicy Fail they would stick while it is down). oldObject
  // is null on CREATE.
  s.match_conditions = {
      {"sets-a-pvc-cleanup-annotation",
       "has(object.metadata.annotations) && ['" + std::string(kRemovedAnnotation) + "', '" +
           kRemoveAllAnnotation +
           "'].exists(k, k in object.metadata.annotations && (oldObject == null || "
           "!has(oldObject.metadata.annotations) || !(k in oldObject.metadata.annotations) || "
           "oldObject.metadata.annotations[k] != object.metadata.annotations[k]))"}};
  s.options = {{"pvc-cleanup-remove-all-users", "",
                "users, and groups as group:NAME, who may set " + std::string(kRemoveAllAnnotation) +
                    ": \"true\" (comma-separated; empty: anyone)"}};
  s.object_fields = {"/metadata/name", "/metadata/generateName", "/metadata/annotations", "/metadata/labels",
                     "/spec/template/spec/volumes"};
  s.old_object_fields = {"/metadata/annotations", "/spec/template/spec/volumes"};
  s.reads_cluster = true;
  s.cluster_reads = {"list persistentvolumeclaims"};
  s.build = [](const PolicyConfig &config) -> std::unique_ptr<Policy> {
    const ClusterView &cluster = config.required_cluster();
    return std::make_unique<PvcCleanupGuard>(cluster,
                                             split_list(config.option("pvc-cleanup-remove-all-users")));
  };
  return s;
}

PvcCleanupGuard::PvcCleanupGuard(const ClusterView &cluster, std::vector<std::string> may_remove_all)
    : cluster_(cluster), may_remove_all_(std::move(may_remove_all)) {}

bool PvcCleanupGuard::reads_cluster_for(const AdmissionRequest &request) const {
  const Json &vm = request.object;
  return vm.is_object() && set_or_changed(request, kRemovedAnnotation) && removes_all(vm) &&
         !guest_cluster_of(vm).empty() && !names_not_its_own(request).empty();
}

// Called for what spec().rules match: VMs being created or updated.
Decision PvcCleanupGuard::review(const AdmissionRequest &request) const {
  const Json &vm = request.object;
  if (!vm.is_object()) {
    return Decision::deny(400, "BadRequest", std::string(kName) + ": the request carries no VirtualMachine");
  }
  if (request.namespace_name.empty()) {
    // A list in "" would be every namespace's PVCs.
    return Decision::deny(400, "BadRequest", std::string(kName) + ": the request names no namespace");
  }
  const bool removed_changed = set_or_changed(request, kRemovedAnnotation);
  const bool remove_all_changed = set_or_changed(request, kRemoveAllAnnotation);
  // An update that leaves both as they were is not looked at further.
  if (!removed_changed && !remove_all_changed) return Decision::allow();

  const Json &meta = member_or_null(vm, "metadata");
  std::string name = text_of(member_or_null(meta, "name"));
  if (name.empty()) name = text_of(member_or_null(meta, "generateName"));
  const std::string vm_name = request.namespace_name + "/" + name;
  const std::string guest_cluster = guest_cluster_of(vm);
  const bool remove_all = removes_all(vm);
  Decision decision = Decision::allow();

  if (remove_all_changed) {
    if (!remove_all) {
      decision.warn(std::string(kRemoveAllAnnotation) + " is " + annotation(vm, kRemoveAllAnnotation).dump() +
                    ": the node driver acts only on \"true\"");
    } else if (!may_remove_all(request, may_remove_all_)) {
      return Decision::deny(403, "Forbidden",
                            std::string(kName) + ": user \"" + request.username + "\" may not set " +
                                kRemoveAllAnnotation + ": \"true\" on " + vm_name +
                                " (--pvc-cleanup-remove-all-users)");
    } else if (guest_cluster.empty()) {
      decision.warn(std::string(kRemoveAllAnnotation) + ": \"true\" on " + vm_name +
                    ", which is not a guest-cluster VM (no " + kGuestClusterLabel + " label)");
    }
  }
  if (!removed_changed) return decision;

  std::vector<std::string> foreign = names_not_its_own(request);
  const bool guest_teardown = remove_all && !guest_cluster.empty();
  if (!foreign.empty() && guest_teardown) {
    // Only now, and only the guest cluster's PVCs in the VM's namespace.
    try {
      std::set<std::string> guest_pvcs;
      ResourceRef pvcs{"", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", request.namespace_name};
      pvcs.label_selector = std::string(kGuestClusterLabel) + "=" + guest_cluster;
      cluster_.list_each(pvcs, {"/metadata/name", "/metadata/labels"}, request.deadline,
                         {[&](Json &&pvc) {
                            // The offline view and a server that ignores the
                            // selector are held to it here too.
                            const Json &meta = member_or_null(pvc, "metadata");
                            if (text_of(member_or_null(member_or_null(meta, "labels"), kGuestClusterLabel)) ==
                                guest_cluster) {
                              guest_pvcs.insert(text_of(member_or_null(meta, "name")));
                            }
                          },
                          [&] { guest_pvcs.clear(); }});
      foreign.erase(std::remove_if(foreign.begin(), foreign.end(),
                                   [&](const std::string &name) { return guest_pvcs.count(name) > 0; }),
                    foreign.end());
    } catch (const ClusterReadError &e) {
      // Fail closed: a deletion list is at stake.
      return Decision::deny(503, "ServiceUnavailable",
                            std::string(kName) + " could not read the cluster: " + e.what());
    }
  }
  if (foreign.empty()) return decision;
  std::sort(foreign.begin(), foreign.end());
  std::string message = std::string(kRemovedAnnotation) + " on " + vm_name +
                        " names PVCs that Harvester would delete with it although they are not its volumes" +
                        (guest_teardown ? " nor PVCs of guest cluster " + guest_cluster : std::string()) +
                        ": " + capped_list(foreign, kNamesInMessage);
  if (!guest_teardown && !guest_cluster.empty()) {
    message += " (a guest cluster's own PVCs may be listed only with " + std::string(kRemoveAllAnnotation) +
               ": \"true\")";
  }
  Decision denied = Decision::deny(422, "Invalid", message);
  denied.causes.push_back(
      {"FieldValueInvalid", message, "metadata.annotations[" + std::string(kRemovedAnnotation) + "]"});
  denied.warnings = std::move(decision.warnings);
  return denied;
}

}  // namespace hci_admission::webhooks
