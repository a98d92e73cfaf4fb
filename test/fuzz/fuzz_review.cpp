// libFuzzer target: AdmissionReview decoding, both mutating policies (the CSI one
// through views, as the router gives them), encoding.
#include <cstdint>
#include <string>
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
  // The server's buffer has bytes past the body, parsed in place: here
  // closing brackets and quotes that must never count.
  static std::string buffer;
  buffer.assign(reinterpret_cast<const char *>(d), n);
  buffer.append(kJsonPadding, '}');
  const std::string_view in_place(buffer.data(), n);
  try {
    auto r = decode_review(in_place, f, false, kJsonPadding);
    auto dec = csi->review(r.request);
    encode_review(r.api_version, r.request.uid, dec);
    auto r2 = decode_review(std::string_view(reinterpret_cast<const char *>(d), n));
    auto dec2 = kv->review(r2.request);
    encode_review(r2.api_version, r2.request.uid, dec2);
  } catch (const ReviewError &) {
  }
  // In place or copied, the same verdict.
  bool in_place_ok = true, copied_ok = true;
  try {
    decode_review(in_place, f, false, kJsonPadding);
  } catch (const ReviewError &) {
    in_place_ok = false;
  }
  try {
    decode_review(std::string_view(reinterpret_cast<const char *>(d), n), f);
  } catch (const ReviewError &) {
    copied_ok = false;
  }
  if (in_place_ok != copied_ok) __builtin_trap();
  return 0;
}
