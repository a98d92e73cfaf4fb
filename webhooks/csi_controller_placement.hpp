// Keeps harvester-csi-driver controller pods on control-plane nodes,
// whatever chart version created them (harvester/harvester #7189; the
// chart fixed it only from harvester-csi-driver 0.1.23).
#pragma once

#include "hci_admission/admission/policy.hpp"
#include "policy_util.hpp"

#include <string>
#include <vector>

namespace hci_admission::webhooks {

class CsiControllerPlacement : public Policy {
 public:
  struct Settings {
    LabelSelector controller_selector;
    // A node with any of these labels is a control-plane node.
    std::vector<std::string> control_plane_labels;
  };

  static constexpr const char *kName = "csi-controller-placement";
  static PolicySpec spec();

  explicit CsiControllerPlacement(Settings settings);
  Decision review(const AdmissionRequest &request) const override;

 private:
  bool term_requires_control_plane(const Json &term) const;
  void place_on_control_plane(const JsonView &affinity, JsonPatch &patch) const;
  void add_control_plane_tolerations(const JsonView &tolerations, JsonPatch &patch) const;
  // Both on spec.affinity.
  void confine_node_affinity(Json &affinity) const;
  void spread_replicas(Json &affinity) const;

  Settings settings_;
  // Built once: constructing nlohmann values per request was a visible cost.
  Json anti_affinity_;                        // the chart's preferred podAntiAffinity
  Json control_plane_terms_ = Json::array();  // one Exists term per label
  std::vector<Json> label_requirements_;      // one Exists expression per label
  // The values of the usual patch, written once.
  std::vector<RenderedJson> rendered_tolerations_;  // for kControlPlaneTaints, in order
  RenderedJson rendered_all_tolerations_;           // all of them, for a pod with none
  RenderedJson rendered_affinity_;                  // for a pod without affinity
};

}  // namespace hci_admission::webhooks
