#include "pvc_cleanup_guard.hpp"

#include "hci_admission/admission/review_codec.hpp"

#include <catch2/catch.hpp>

#include <atomic>

using namespace hci_admission;
using webhooks::PvcCleanupGuard;

namespace {

constexpr const char *kRemoved = PvcCleanupGuard::kRemovedAnnotation;
constexpr const char *kRemoveAll = PvcCleanupGuard::kRemoveAllAnnotation;
constexpr const char *kGuest = PvcCleanupGuard::kGuestClusterLabel;

// A guest-cluster VM as the node driver makes it: a root disk from a
// DataVolume template, a claim, and a hotplugged guest CSI volume.
Json vm(Json annotations = Json::object(), const std::string &guest_cluster = "rke2-a") {
  Json labels = Json::object();
  if (!guest_cluster.empty()) labels[kGuest] = guest_cluster;
  Json volumes = Json::array();
  volumes.push_back({{"name", "disk-0"}, {"dataVolume", {{"name", "rke2-a-pool1-x7k2p-disk-0-abcde"}}}});
  volumes.push_back(
      {{"name", "data"}, {"persistentVolumeClaim", {{"claimName", "rke2-a-pool1-x7k2p-data"}}}});
  volumes.push_back({{"name", "pvc-hot"},
                     {"persistentVolumeClaim", {{"claimName", "pvc-3b5c7d9e"}, {"hotpluggable", true}}}});
  volumes.push_back({{"name", "cloudinitdisk"}, {"cloudInitNoCloud", {{"userData", "#cloud-config"}}}});
  Json vm = {{"apiVersion", "kubevirt.io/v1"}, {"kind", "VirtualMachine"}};
  vm["metadata"] = {{"name", "rke2-a-pool1-x7k2p"}, {"namespace", "guests"}};
  vm["metadata"]["labels"] = labels;
  vm["metadata"]["annotations"] = std::move(annotations);
  vm["spec"]["runStrategy"] = "RerunOnFailure";
  vm["spec"]["template"]["spec"]["volumes"] = std::move(volumes);
  return vm;
}

Json pvc(const std::string &name, const std::string &ns, const std::string &guest_cluster) {
  Json labels = Json::object();
  if (!guest_cluster.empty()) labels[kGuest] = guest_cluster;
  return {{"apiVersion", "v1"},
          {"kind", "PersistentVolumeClaim"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}}};
}

// PVCs in the cluster: two of guest cluster rke2-a (one its CSI volume),
// one of another guest cluster, one of nobody, one of rke2-a elsewhere.
std::vector<Json> cluster_pvcs() {
  return {pvc("pvc-3b5c7d9e", "guests", "rke2-a"), pvc("pvc-8f1e2d3c", "guests", "rke2-a"),
          pvc("pvc-other-cluster", "guests", "rke2-b"), pvc("detached-data-disk", "guests", ""),
          pvc("pvc-elsewhere", "team-a", "rke2-a")};
}

// Lists by every CountingView, for decide() to hold review() to
// reads_cluster_for() whichever view the guard was given.
std::atomic<int> lists_by_any_view{0};

// Counts its lists, and fails them on demand.
class CountingView : public StaticClusterView {
 public:
  using StaticClusterView::StaticClusterView;
  // StaticClusterView::list reads through list_each, so counting here
  // counts both.
  void list_each(const ResourceRef &r, const std::vector<std::string> &fields, Deadline d,
                 const ListSink &sink) const override {
    ++lists;
    ++lists_by_any_view;
    last_selector = r.label_selector;
    if (fail) throw ClusterReadError("list " + r.describe() + ": HTTP 500: etcd is sad");
    StaticClusterView::list_each(r, fields, d, sink);
  }
  mutable std::atomic<int> lists{0};
  mutable std::string last_selector;
  bool fail = false;
};

struct Request {
  std::string operation = "UPDATE";
  Json object;
  Json old_object = nullptr;
  std::string username = "admin";
  std::vector<std::string> groups = {"system:authenticated"};
  std::string namespace_name = "guests";
};

Decision decide(const PvcCleanupGuard &guard, const Request &r) {
  const PolicySpec spec = PvcCleanupGuard::spec();
  const Json review = {
      {"apiVersion", "admission.k8s.io/v1"},
      {"kind", "AdmissionReview"},
      {"request",
       {{"uid", "u"},
        {"kind", {{"group", "kubevirt.io"}, {"version", "v1"}, {"kind", "VirtualMachine"}}},
        {"resource", {{"group", "kubevirt.io"}, {"version", "v1"}, {"resource", "virtualmachines"}}},
        {"operation", r.operation},
        {"namespace", r.namespace_name},
        {"userInfo", {{"username", r.username}, {"groups", r.groups}}},
        {"object", r.object},
        {"oldObject", r.old_object}}}};
  ObjectFields fields{FieldMask::of(spec.object_fields), FieldMask::of(spec.old_object_fields),
                      spec.reads_views};
  const auto decoded = decode_review(review.dump(), fields);
  if (auto screened = spec.screen(decoded.request)) return *screened;
  // review() reads only where reads_cluster_for() said it may: the router
  // runs the others on the event loop.
  const int lists_before = lists_by_any_view;
  Decision decision = guard.review(decoded.request);
  if (!guard.reads_cluster_for(decoded.request)) CHECK(lists_by_any_view == lists_before);
  return decision;
}

Json annotations(const std::string &removed, const std::string &remove_all = "") {
  Json a = Json::object();
  if (!removed.empty()) a[kRemoved] = removed;
  if (!remove_all.empty()) a[kRemoveAll] = remove_all;
  return a;
}

}  // namespace

TEST_CASE("pvc-cleanup-guard: the VM's own claims pass without a read", "[pvc-cleanup]") {
  CountingView view(cluster_pvcs());
  PvcCleanupGuard guard(view, {});
  // What Harvester's UI writes (the disks ticked) and what the node driver
  // writes for a VM's own volumes, with its spacing and empty items.
  for (const char *list :
       {"rke2-a-pool1-x7k2p-disk-0-abcde", "rke2-a-pool1-x7k2p-data, rke2-a-pool1-x7k2p-disk-0-abcde",
        " rke2-a-pool1-x7k2p-data ,,pvc-3b5c7d9e,", ""}) {
    INFO(list);
    for (const char *op : {"CREATE", "UPDATE"}) {
      const Decision d = decide(guard, {op, vm(annotations(list))});
      CHECK(d.allowed);
      CHECK(d.warnings.empty());
    }
  }
  CHECK(view.lists == 0);
}

TEST_CASE("pvc-cleanup-guard: PVCs not of this VM are refused, named and sorted", "[pvc-cleanup]") {
  CountingView view(cluster_pvcs());
  PvcCleanupGuard guard(view, {});
  const Decision d = decide(
      guard, {"UPDATE", vm(annotations("rke2-a-pool1-x7k2p-data, pvc-other-cluster, detached-data-disk"))});
  CHECK_FALSE(d.allowed);
  CHECK(d.code == 422);
  CHECK(d.reason == "Invalid");
  CHECK(d.message ==
        "harvesterhci.io/removedPersistentVolumeClaims on guests/rke2-a-pool1-x7k2p names PVCs that "
        "Harvester would "
        "delete with it although they are not its volumes: detached-data-disk, pvc-other-cluster (a guest "
        "cluster's own PVCs may be listed only with harvesterhci.io/removeAllPersistentVolumeClaims: "
        "\"true\")");
  REQUIRE(d.causes.size() == 1);
  CHECK(d.causes[0].field == "metadata.annotations[harvesterhci.io/removedPersistentVolumeClaims]");
  CHECK(view.lists == 0);  // without removeAll the guest cluster's PVCs are not looked up
}

TEST_CASE("pvc-cleanup-guard: a PVC attached in the same update is not the VM's own", "[pvc-cleanup]") {
  CountingView view(cluster_pvcs());
  PvcCleanupGuard guard(view, {});
  // One update attaching another VM's data disk and naming it for deletion.
  Json grabbing = vm(annotations("rke2-a-pool1-x7k2p-data,detached-data-disk"));
  grabbing["spec"]["template"]["spec"]["volumes"].push_back(
      {{"name", "grab"}, {"persistentVolumeClaim", {{"claimName", "detached-data-disk"}}}});
  const Decision d = decide(guard, {"UPDATE", grabbing, vm()});
  CHECK(d.code == 422);
  CHECK_THAT(d.message, Catch::Contains(": detached-data-disk"));
  // Attached before, named now: its own.
  Json attached = vm();
  attached["spec"]["template"]["spec"]["volumes"].push_back(
      {{"name", "grab"}, {"persistentVolumeClaim", {{"claimName", "detached-data-disk"}}}});
  CHECK(decide(guard, {"UPDATE", grabbing, attached}).allowed);
  // Detached in the same update that names it: it was the VM's.
  CHECK(decide(guard, {"UPDATE", vm(annotations("detached-data-disk")), attached}).allowed);
  CHECK(decide(guard, {"UPDATE", vm(annotations("rke2-a-pool1-x7k2p-data")), vm()}).allowed);
}

TEST_CASE("pvc-cleanup-guard: names a generateName VM, refuses a request without a namespace",
          "[pvc-cleanup]") {
  CountingView view(cluster_pvcs());
  PvcCleanupGuard guard(view, {});
  Json generated = vm(annotations("detached-data-disk"));
  generated["metadata"].erase("name");
  generated["metadata"]["generateName"] = "rke2-a-pool1-";
  const Decision d = decide(guard, {"CREATE", generated});
  CHECK(d.code == 422);
  CHECK_THAT(d.message, Catch::Contains(" on guests/rke2-a-pool1- names PVCs"));
  Request no_namespace{"UPDATE", vm(annotations("pvc-8f1e2d3c", "true")), vm(annotations("", "true"))};
  no_namespace.namespace_name = "";
  const Decision refused = decide(guard, no_namespace);
  CHECK(refused.code == 400);
  CHECK(view.lists == 0);
}

TEST_CASE("pvc-cleanup-guard: a long list of foreign PVCs is named 50 at most", "[pvc-cleanup]") {
  CountingView view(cluster_pvcs());
  PvcCleanupGuard guard(view, {});
  std::string list;
  for (int i = 59; i >= 0; --i) list += "stray-" + std::string(i < 10 ? "0" : "") + std::to_string(i) + ",";
  const Decision d = decide(guard, {"CREATE", vm(annotations(list))});
  CHECK(d.code == 422);
  CHECK_THAT(d.message,
             Catch::Contains(": stray-00, stray-01, ") &&
                 Catch::EndsWith("stray-49, and 10 more (a guest cluster's own PVCs may be listed "
                                 "only with harvesterhci.io/removeAllPersistentVolumeClaims: \"true\")"));
  CHECK_THAT(d.message, !Catch::Contains("stray-50"));
}

TEST_CASE("pvc-cleanup-guard: a guest-cluster teardown may list that cluster's PVCs", "[pvc-cleanup]") {
  CountingView view(cluster_pvcs());
  PvcCleanupGuard guard(view, {});
  // The node driver's Remove(): own claims, hotplugged ones, and the guest
  // cluster's PVCs in the VM's namespace.
  const std::string driver =
      "rke2-a-pool1-x7k2p-disk-0-abcde,rke2-a-pool1-x7k2p-data,pvc-3b5c7d9e,pvc-8f1e2d3c";
  const Decision d = decide(guard, {"UPDATE", vm(annotations(driver, "true")), vm(annotations("", "true"))});
  CHECK(d.allowed);
  CHECK(view.lists == 1);
  CHECK(view.last_selector == "guestcluster.harvesterhci.io/name=rke2-a");

  // Another guest cluster's, an unlabelled one, or one in another namespace: refused.
  for (const char *foreign : {"pvc-other-cluster", "detached-data-disk", "pvc-elsewhere"}) {
    INFO(foreign);
    const Decision refused = decide(
        guard, {"UPDATE", vm(annotations(driver + "," + foreign, "true")), vm(annotations("", "true"))});
    CHECK_FALSE(refused.allowed);
    CHECK(refused.code == 422);
    CHECK_THAT(refused.message, Catch::EndsWith(std::string("nor PVCs of guest cluster rke2-a: ") + foreign));
  }
  // removeAll "true" but no guest-cluster label: nothing to look up.
  const int before = view.lists;
  const Decision unlabelled = decide(guard, {"UPDATE", vm(annotations("pvc-8f1e2d3c", "true"), ""), nullptr});
  CHECK_FALSE(unlabelled.allowed);
  CHECK(view.lists == before);
  // removeAll other than "true": its PVCs are not the VM's to delete.
  CHECK_FALSE(decide(guard, {"UPDATE", vm(annotations("pvc-8f1e2d3c", "TRUE")), vm()}).allowed);
}

TEST_CASE("pvc-cleanup-guard: an update that leaves both annotations is not looked at", "[pvc-cleanup]") {
  CountingView view(cluster_pvcs());
  view.fail = true;
  PvcCleanupGuard guard(view, {"someone-else"});
  // Even a list that would be refused, and removeAll "true" by a user not
  // allowed to add it, pass when they were already there.
  const Json a = annotations("detached-data-disk,pvc-8f1e2d3c", "true");
  const Decision d = decide(guard, {"UPDATE", vm(a), vm(a)});
  CHECK(d.allowed);
  CHECK(d.warnings.empty());
  CHECK(view.lists == 0);
  // Removing them is not checked either.
  CHECK(decide(guard, {"UPDATE", vm(), vm(a)}).allowed);
  CHECK(view.lists == 0);
  // A changed list is.
  CHECK_FALSE(decide(guard, {"UPDATE", vm(annotations("detached-data-disk")), vm(annotations("x"))}).allowed);
}

TEST_CASE("pvc-cleanup-guard: a failed read refuses with 503", "[pvc-cleanup]") {
  CountingView view(cluster_pvcs());
  view.fail = true;
  PvcCleanupGuard guard(view, {});
  const Decision d =
      decide(guard, {"UPDATE", vm(annotations("pvc-8f1e2d3c", "true")), vm(annotations("", "true"))});
  CHECK_FALSE(d.allowed);
  CHECK(d.code == 503);
  CHECK_THAT(d.message, Catch::Contains("could not read the cluster") &&
                            Catch::Contains("v1 persistentvolumeclaims in guests labelled "
                                            "guestcluster.harvesterhci.io/name=rke2-a") &&
                            Catch::Contains("etcd is sad"));
}

TEST_CASE("pvc-cleanup-guard: removeAllPersistentVolumeClaims values and who may set it", "[pvc-cleanup]") {
  CountingView view(cluster_pvcs());
  PvcCleanupGuard anyone(view, {});
  for (const char *value : {"false", "TRUE", "yes", ""}) {
    INFO(value);
    Json a = Json::object();
    a[kRemoveAll] = value;
    const Decision d = decide(anyone, {"UPDATE", vm(a), vm()});
    CHECK(d.allowed);
    REQUIRE(d.warnings.size() == 1);
    CHECK_THAT(d.warnings[0], Catch::Contains("the node driver acts only on \"true\""));
  }
  const Decision not_guest = decide(anyone, {"UPDATE", vm(annotations("", "true"), ""), vm()});
  CHECK(not_guest.allowed);
  REQUIRE(not_guest.warnings.size() == 1);
  CHECK_THAT(not_guest.warnings[0], Catch::Contains("not a guest-cluster VM"));
  CHECK(decide(anyone, {"UPDATE", vm(annotations("", "true")), vm()}).warnings.empty());

  // Rancher's cloud credential (a user) and a group may; others get 403.
  PvcCleanupGuard restricted(view, {"u-rancher-cc", "group:harvester-cleanup"});
  Request by_rancher{"UPDATE", vm(annotations("", "true")), vm(), "u-rancher-cc", {}};
  CHECK(decide(restricted, by_rancher).allowed);
  Request by_group{
      "UPDATE", vm(annotations("", "true")), vm(), "bob", {"system:authenticated", "harvester-cleanup"}};
  CHECK(decide(restricted, by_group).allowed);
  Request by_other{"UPDATE", vm(annotations("", "true")), vm(), "mallory", {"system:authenticated"}};
  const Decision forbidden = decide(restricted, by_other);
  CHECK_FALSE(forbidden.allowed);
  CHECK(forbidden.code == 403);
  CHECK(forbidden.reason == "Forbidden");
  CHECK_THAT(forbidden.message, Catch::Contains("user \"mallory\" may not set"));
  // Only "true" is restricted; the value already there stays.
  Request other_value{"UPDATE", vm(annotations("", "false")), vm(), "mallory", {}};
  CHECK(decide(restricted, other_value).allowed);
  Request unchanged{"UPDATE", vm(annotations("", "true")), vm(annotations("", "true")), "mallory", {}};
  CHECK(decide(restricted, unchanged).allowed);
}

TEST_CASE("pvc-cleanup-guard: other kinds, missing objects, spec", "[pvc-cleanup]") {
  CountingView view(cluster_pvcs());
  PvcCleanupGuard guard(view, {});
  CHECK(decide(guard, {"DELETE", vm(annotations("detached-data-disk")), nullptr}).allowed);
  const PolicySpec spec = PvcCleanupGuard::spec();
  REQUIRE(spec.rules.size() == 1);
  CHECK(spec.rules[0].resource == "virtualmachines");
  CHECK(spec.rules[0].operations == std::vector<std::string>{"CREATE", "UPDATE"});
  REQUIRE(spec.match_conditions.size() == 1);
  // What it means is evaluated with CEL by test/cel_test.mjs.
  CHECK_THAT(spec.match_conditions[0].expression,
             Catch::Contains("'harvesterhci.io/removedPersistentVolumeClaims'") &&
                 Catch::Contains("'harvesterhci.io/removeAllPersistentVolumeClaims'") &&
                 Catch::Contains("oldObject.metadata.annotations[k] != object.metadata.annotations[k]"));
  CHECK(spec.cluster_reads == std::vector<std::string>{"list persistentvolumeclaims"});
  CHECK_THROWS_AS(
      spec.build(PolicyConfig(std::map<std::string, std::string>{{"pvc-cleanup-remove-all-users", ""}})),
      std::invalid_argument);
}
