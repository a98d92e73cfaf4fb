#include "kube_selectors.hpp"

#include "policy_util.hpp"

#include <algorithm>

namespace hci_admission::webhooks {
namespace {

KubeLabelSelector::Operator parse_operator(const std::string &text, const std::string &where) {
  if (text == "In") return KubeLabelSelector::Operator::In;
  if (text == "NotIn") return KubeLabelSelector::Operator::NotIn;
  if (text == "Exists") return KubeLabelSelector::Operator::Exists;
  if (text == "DoesNotExist") return KubeLabelSelector::Operator::DoesNotExist;
  throw ShapeError(where + ": unknown operator \"" + text + "\"");
}

std::vector<std::string> string_values(const Json &expression, const std::string &where) {
  std::vector<std::string> values;
  const Json *list = find_member(expression, "values", Json::value_t::array, where);
  if (list == nullptr) return values;
  for (const auto &v : *list) {
    if (!v.is_string()) throw ShapeError(where + ".values: every value must be a string");
    values.push_back(v.get<std::string>());
  }
  return values;
}

}  // namespace

KubeLabelSelector KubeLabelSelector::from_json(const Json &selector, const std::string &where) {
  KubeLabelSelector out;
  if (selector.is_null()) {
    out.nothing_ = true;
    return out;
  }
  if (!selector.is_object()) throw ShapeError(where + " must be an object");
  if (const Json *labels = find_member(selector, "matchLabels", Json::value_t::object, where)) {
    for (auto it = labels->begin(); it != labels->end(); ++it) {
      if (!it->is_string()) throw ShapeError(where + ".matchLabels." + it.key() + " must be a string");
      out.requirements_.push_back({std::string(it.key()), Operator::In, {it->get<std::string>()}});
    }
  }
  const Json *expressions = find_member(selector, "matchExpressions", Json::value_t::array, where);
  for (size_t i = 0; expressions != nullptr && i < expressions->size(); ++i) {
    const Json &e = (*expressions)[i];
    const std::string at = where + ".matchExpressions[" + std::to_string(i) + "]";
    if (!e.is_object()) throw ShapeError(at + " must be an object");
    Requirement r{string_member(e, "key", at), parse_operator(string_member(e, "operator", at), at),
                  string_values(e, at)};
    if (r.key.empty()) throw ShapeError(at + ": key is empty");
    const bool wants_values = r.op == Operator::In || r.op == Operator::NotIn;
    if (wants_values == r.values.empty()) {
      throw ShapeError(at +
                       (wants_values ? ": In and NotIn need values" : ": Exists and DoesNotExist take none"));
    }
    out.requirements_.push_back(std::move(r));
  }
  return out;
}

bool KubeLabelSelector::matches(const Json &labels) const {
  if (nothing_) return false;
  return std::all_of(requirements_.begin(), requirements_.end(), [&](const Requirement &r) {
    const Json *value = nullptr;
    if (labels.is_object()) {
      const auto it = labels.find(r.key);
      if (it != labels.end() && it->is_string()) value = &*it;
    }
    const auto listed = [&] {
      return std::find(r.values.begin(), r.values.end(), value->get_ref<const JsonString &>()) !=
             r.values.end();
    };
    switch (r.op) {
      case Operator::In:
        return value != nullptr && listed();
      case Operator::NotIn:
        return value == nullptr || !listed();
      case Operator::Exists:
        return value != nullptr;
      case Operator::DoesNotExist:
        return value == nullptr;
    }
    return false;
  });
}

}  // namespace hci_admission::webhooks
