#include "kubevirt_infra_placement.hpp"

#include "policy_util.hpp"

namespace hci_admission::webhooks {

PolicySpec KubeVirtInfraPlacement::spec() {
  PolicySpec s;
  s.name = kName;
  s.type = PolicyType::Mutating;
  s.summary = "default spec.infra.nodePlacement to {}";
  s.rules = {{{"CREATE", "UPDATE"}, "kubevirt.io", {"v1"}, "kubevirts", "KubeVirt"}};
  s.object_fields = {"/metadata/name", "/metadata/annotations", "/spec/infra"};
  s.old_object_fields = {};
  s.reads_user_info = false;
  s.build = [](const PolicyConfig &) -> std::unique_ptr<Policy> {
    return std::make_unique<KubeVirtInfraPlacement>();
  };
  return s;
}

// Called for what spec().rules match: KubeVirt being created or updated.
Decision KubeVirtInfraPlacement::review(const AdmissionRequest &request) const {
  const Json &kubevirt = request.object;
  if (!kubevirt.is_object()) {
    return Decision::allow().warn(std::string(kName) +
                                  ": the request carries no KubeVirt object; left unchanged");
  }

  Decision decision = Decision::allow();
  std::string value;
  switch (read_bool_annotation(kubevirt, kOptOutAnnotation, &value)) {
    case BoolAnnotation::True:
      return decision;
    case BoolAnnotation::Invalid:
      decision.warn(std::string(kOptOutAnnotation) + "=\"" + value +
                    "\" is neither true nor false; nodePlacement defaulted as if absent");
      break;
    case BoolAnnotation::Absent:
    case BoolAnnotation::False:
      break;
  }

  try {
    // Only a missing or null nodePlacement is "nil" to KubeVirt; any object,
    // even {}, is the operator's choice and stays as it is.
    const Json *spec = find_member(kubevirt, "spec", Json::value_t::object, "KubeVirt");
    const Json *infra = spec ? find_member(*spec, "infra", Json::value_t::object, "spec") : nullptr;
    const Json *placement =
        infra ? find_member(*infra, "nodePlacement", Json::value_t::object, "spec.infra") : nullptr;
    if (placement != nullptr) return decision;
    if (spec == nullptr) {
      decision.patch.add("/spec", {{"infra", {{"nodePlacement", Json::object()}}}});
    } else if (infra == nullptr) {
      decision.patch.add("/spec/infra", {{"nodePlacement", Json::object()}});
    } else {
      decision.patch.add("/spec/infra/nodePlacement", Json::object());
    }
  } catch (const ShapeError &e) {
    return Decision::allow().warn(std::string(kName) + ": " + e.what() + "; left unchanged");
  }
  return decision;
}

}  // namespace hci_admission::webhooks
