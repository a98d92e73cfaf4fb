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
  void confine_node_affinity(Json &spec) const;
  void tolerate_control_plane_taints(Json &spec) const;
  void spread_replicas(Json &spec) const;

  Settings settings_;
  // Built once: constructing nlohmann values per request was a visible cost.
  Json anti_affinity_;                        // the chart's preferred podAntiAffinity
  Json control_plane_terms_ = Json::array();  // one Exists term per label
  std::vector<Json> label_requirements_;      // one Exists expression per label
  std::vector<Json> tolerations_;             // for kControlPlaneTaints, in order
};

}  // namespace hci_admission::webhooks
