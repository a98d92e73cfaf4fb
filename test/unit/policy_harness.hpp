// Runs a policy the way the server does: the object goes through an
// AdmissionReview and the policy's field mask, so a policy that reads a
// field it did not declare fails these tests, and the request is screened
// by the policy's rules first.
#pragma once

#include "hci_admission/admission/review_codec.hpp"

#include <catch2/catch.hpp>

#include <cctype>
#include <string>

namespace test_support {

// Applies a JSON Patch with nlohmann's own implementation, independent of
// ours; its patch() works on its std::string json only.
inline hci_admission::Json apply_patch(const hci_admission::Json &doc, const std::string &patch) {
  const nlohmann::json applied =
      nlohmann::json::parse(hci_admission::json_text(doc)).patch(nlohmann::json::parse(patch));
  return hci_admission::Json::parse(applied.dump());
}

using hci_admission::Json;

struct Outcome {
  hci_admission::Decision decision;
  Json patched;  // the object with the patch applied (nlohmann's own patch())
};

inline Outcome run_policy(const hci_admission::PolicySpec &spec, const hci_admission::Policy &policy,
                          const Json &object, const Json &kind, const std::string &operation = "CREATE") {
  // The resource the API server names beside the kind: the policy's own
  // for its kind, else the usual lower-case plural.
  std::string group(kind.value("group", "")), version(kind.value("version", ""));
  std::string resource(kind.value("kind", ""));
  for (auto &c : resource) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  resource += "s";
  for (const auto &rule : spec.rules) {
    if (rule.group == group && rule.kind == kind.value("kind", "")) resource = rule.resource;
  }
  const Json review = {{"apiVersion", "admission.k8s.io/v1"},
                       {"kind", "AdmissionReview"},
                       {"request",
                        {{"uid", "u"},
                         {"kind", kind},
                         {"resource", {{"group", group}, {"version", version}, {"resource", resource}}},
                         {"operation", operation},
                         {"namespace", "ns"},
                         {"object", object},
                         {"oldObject", nullptr},
                         {"dryRun", false}}}};
  const std::string body = json_text(review);
  hci_admission::ObjectFields fields{hci_admission::FieldMask::of(spec.object_fields),
                                     hci_admission::FieldMask::of(spec.old_object_fields), spec.reads_views};
  const auto decoded = hci_admission::decode_review(body, fields);
  // As the router does: the policy sees only what its rules match.
  auto screened = spec.screen(decoded.request);
  Outcome out{screened ? *screened : policy.review(decoded.request), object};
  if (!out.decision.patch.empty()) {
    INFO("patch: " << out.decision.patch.dump());
    out.patched = apply_patch(object, out.decision.patch.dump());
  }
  return out;
}

}  // namespace test_support
