// Kubernetes label selectors as PodDisruptionBudgets use them
// (metav1.LabelSelector: matchLabels and matchExpressions with In, NotIn,
// Exists, DoesNotExist), evaluated with Kubernetes' semantics: an empty
// selector selects everything, a null one nothing; NotIn and DoesNotExist
// hold for an object without the label. (Issue 13, drain blockers.)
#pragma once

#include "hci_admission/json/json.hpp"

#include <string>
#include <vector>

namespace hci_admission::webhooks {

class KubeLabelSelector {
 public:
  enum class Operator { In, NotIn, Exists, DoesNotExist };
  struct Requirement {
    std::string key;
    Operator op;
    std::vector<std::string> values;  // In and NotIn only
  };

  // From a metav1.LabelSelector; null (or absent) gives a selector that
  // selects nothing. Throws ShapeError (policy_util.hpp) naming `where` for
  // a selector Kubernetes would not accept: an unknown operator, In/NotIn
  // without values, Exists/DoesNotExist with values, a value that is not a
  // string.
  static KubeLabelSelector from_json(const Json &selector, const std::string &where);

  // `labels` is an object's metadata.labels (null or absent: no labels).
  bool matches(const Json &labels) const;
  bool selects_nothing() const { return nothing_; }
  bool selects_everything() const { return !nothing_ && requirements_.empty(); }
  // matchLabels first (as In with one value), then matchExpressions.
  const std::vector<Requirement> &requirements() const { return requirements_; }

 private:
  bool nothing_ = false;
  std::vector<Requirement> requirements_;
};

}  // namespace hci_admission::webhooks
