// libFuzzer target: each policy that reads the cluster (the upgrade guard,
// the PVC cleanup guard) deciding from a review against the fixture
// cluster, then the encoder.
#include <cstdint>
#include "hci_admission/admission/review_codec.hpp"
#include "registry.hpp"
using namespace hci_admission;
namespace {
struct Guard {
  std::unique_ptr<Policy> policy;
  ObjectFields fields;
};
}  // namespace
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  static std::unique_ptr<ClusterView> cluster = StaticClusterView::from_path(FIXTURE_CLUSTER);
  static const std::vector<Guard> guards = [] {
    std::vector<Guard> out;
    for (const auto &spec : webhooks::builtin_policies()) {
      if (!spec.reads_cluster) continue;
      std::map<std::string, std::string> v;
      for (const auto &o : spec.options) v[o.flag] = o.default_value;
      out.push_back(
          {spec.build(PolicyConfig(v, cluster.get())),
           {FieldMask::of(spec.object_fields), FieldMask::of(spec.old_object_fields), spec.reads_views}});
    }
    if (out.size() < 2) __builtin_trap();
    return out;
  }();
  for (const auto &guard : guards) {
    try {
      auto r = decode_review(std::string_view(reinterpret_cast<const char *>(d), n), guard.fields);
      r.request.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      guard.policy->reads_cluster_for(r.request);
      auto decision = guard.policy->review(r.request);
      encode_review(r.api_version, r.request.uid, decision);
    } catch (const ReviewError &) {
    }
  }
  return 0;
}
