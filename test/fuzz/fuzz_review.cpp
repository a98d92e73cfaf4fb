// libFuzzer target: AdmissionReview decoding, both mutating policies (the CSI one
// through views, as the router gives them), encoding.
#include <cstdint>
#include "hci_admission/admission/review_codec.hpp"
#include "registry.hpp"
using namespace hci_admission;
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  static auto specs = webhooks::builtin_policies();
  static ObjectFields f{FieldMask::of(specs[0].object_fields), FieldMask::nothing(), specs[0].reads_views};
  static std::unique_ptr<Policy> csi = [] {
    std::map<std::string, std::string> v;
    for (auto &o : specs[0].options) v[o.flag] = o.default_value;
    return specs[0].build(PolicyConfig(v));
  }();
  static std::unique_ptr<Policy> kv = specs[1].build(PolicyConfig({}));
  try {
    auto r = decode_review(std::string_view(reinterpret_cast<const char *>(d), n), f);
    auto dec = csi->review(r.request);
    encode_review(r.api_version, r.request.uid, dec);
    auto r2 = decode_review(std::string_view(reinterpret_cast<const char *>(d), n));
    auto dec2 = kv->review(r2.request);
    encode_review(r2.api_version, r2.request.uid, dec2);
  } catch (const ReviewError &) {
  }
  return 0;
}
