// libFuzzer target: the upgrade guard's checks over a hostile cluster. The
// input is a JSON array of objects (nodes, pods, PDBs, volumes, instance
// managers, KubeVirt CRs, upgrades and plans of any shape) served by the
// file-backed view; the guard must decide without crashing, whatever the
// selectors, affinities, taints, conditions or counts hold.
#include <cstdint>
#include "upgrade_guard.hpp"
using namespace hci_admission;
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  Json doc =
      Json::parse(reinterpret_cast<const char *>(d), reinterpret_cast<const char *>(d) + n, nullptr, false);
  if (!doc.is_array()) return 0;
  std::vector<Json> objects;
  for (auto &o : doc) {
    if (o.is_object()) objects.push_back(std::move(o));
  }
  StaticClusterView view(std::move(objects));
  webhooks::UpgradeGuard guard(view, {});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (const Json &annotations :
       {Json::object(), Json{{"harvesterhci.io/skipSingleReplicaDetachedVol", "true"}}}) {
    const auto result = guard.evaluate(annotations, deadline);
    (void)result.decision.message.size();
  }
  return 0;
}
