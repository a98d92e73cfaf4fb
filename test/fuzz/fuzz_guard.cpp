// libFuzzer target: the upgrade guard deciding from a review against the
// fixture cluster (nodes and Longhorn volumes), then the encoder.
#include <cstdint>
#include "hci_admission/admission/review_codec.hpp"
#include "registry.hpp"
using namespace hci_admission;
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  static auto specs = webhooks::builtin_policies();
  static const PolicySpec &spec = [&]() -> const PolicySpec & {
    for (const auto &s : specs)
      if (s.reads_cluster) return s;
    __builtin_trap();
  }();
  static std::unique_ptr<ClusterView> cluster = StaticClusterView::from_path(FIXTURE_CLUSTER);
  static std::unique_ptr<Policy> guard = [] {
    std::map<std::string, std::string> v;
    for (auto &o : spec.options) v[o.flag] = o.default_value;
    return spec.build(PolicyConfig(v, cluster.get()));
  }();
  static ObjectFields fields{FieldMask::of(spec.object_fields), FieldMask::of(spec.old_object_fields)};
  try {
    auto r = decode_review(std::string_view(reinterpret_cast<const char *>(d), n), fields);
    r.request.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    auto decision = guard->review(r.request);
    encode_review(r.api_version, r.request.uid, decision);
  } catch (const ReviewError &) {
  }
  return 0;
}
