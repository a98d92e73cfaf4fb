#include "pvc_cleanup_guard.hpp"

#include "policy_util.hpp"

#include <algorithm>
#include <set>

namespace hci_admission::webhooks {
namespace {

// A refusal names this many PVCs.
constexpr size_t kNamesInMessage = 50;

// The VM is read in place (reads_views): for a 2.3 KB VM review, building
// its fields as a tree and freeing it took 38k of 118k instructions
// (callgrind).
JsonView annotation(const JsonView &object, const char *key) {
  return object["metadata"]["annotations"][key];
}

// Two values alike: strings by their text, anything else (a malformed
// annotation) as trees.
bool same(const JsonView &a, const JsonView &b) {
  if (a.is_string() && b.is_string()) return a.string() == b.string();
  return a.to_json() == b.to_json();
}

// Set on CREATE, or added or changed on UPDATE (compared with oldObject).
bool set_or_changed(const AdmissionRequest &request, const char *key) {
  const JsonView now = annotation(request.object_view, key);
  if (!now.exists() || now.is_null()) return false;
  return request.operation != "UPDATE" || !same(now, annotation(request.old_object_view, key));
}

// As Harvester's VM controller reads the list: split on ",", trim, skip empty.
std::vector<std::string> listed_claims(const JsonView &value) {
  std::vector<std::string> out;
  for (auto &name : split_list(std::string(value.string()))) {
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
  }
  return out;
}

// The claims of a VM object: persistentVolumeClaim.claimName and
// dataVolume.name of spec.template.spec.volumes (a DataVolume's PVC has
// its name).
std::set<std::string> claims_of(const JsonView &vm) {
  std::set<std::string> out;
  for (const JsonView v : vm["spec"]["template"]["spec"]["volumes"]) {
    const std::string_view claim = v["persistentVolumeClaim"]["claimName"].string();
    if (!claim.empty()) out.emplace(claim);
    const std::string_view data_volume = v["dataVolume"]["name"].string();
    if (!data_volume.empty()) out.emplace(data_volume);
  }
  return out;
}

std::string guest_cluster_of(const JsonView &vm) {
  return std::string(vm["metadata"]["labels"][PvcCleanupGuard::kGuestClusterLabel].string());
}

bool removes_all(const JsonView &vm) {
  const JsonView value = annotation(vm, PvcCleanupGuard::kRemoveAllAnnotation);
  return value.is_string() && value.string() == "true";
}

// The VM's own claims: on UPDATE those it had before this request.
// Otherwise one update could attach any PVC in the namespace as a volume
// and name it for deletion at once (neither the node driver nor the UI
// changes volumes when it writes the list).
std::set<std::string> own_claims(const AdmissionRequest &request) {
  if (request.operation == "UPDATE" && request.old_object_view.is_object()) {
    return claims_of(request.old_object_view);
  }
  return claims_of(request.object_view);
}

// The listed names that are not claims of the VM itself, in list order.
std::vector<std::string> names_not_its_own(const AdmissionRequest &request) {
  const auto own = own_claims(request);
  std::vector<std::string> out;
  for (auto &name : listed_claims(annotation(request.object_view, PvcCleanupGuard::kRemovedAnnotation))) {
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
  s.reads_views = true;
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
  const JsonView vm = request.object_view;
  return vm.is_object() && set_or_changed(request, kRemovedAnnotation) && removes_all(vm) &&
         !guest_cluster_of(vm).empty() && !names_not_its_own(request).empty();
}

// Called for what spec().rules match: VMs being created or updated.
Decision PvcCleanupGuard::review(const AdmissionRequest &request) const {
  const JsonView vm = request.object_view;
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

  const JsonView meta = vm["metadata"];
  std::string name(meta["name"].string());
  if (name.empty()) name = std::string(meta["generateName"].string());
  const std::string vm_name = request.namespace_name + "/" + name;
  const std::string guest_cluster = guest_cluster_of(vm);
  const bool remove_all = removes_all(vm);
  Decision decision = Decision::allow();

  if (remove_all_changed) {
    if (!remove_all) {
      decision.warn(std::string(kRemoveAllAnnotation) + " is " +
                    json_text(annotation(vm, kRemoveAllAnnotation).to_json()) +
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
