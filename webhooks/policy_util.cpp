#include "policy_util.hpp"

#include <algorithm>
#include <sstream>

namespace hci_admission::webhooks {

const Json &member_or_null(const Json &parent, const char *key) {
  static const Json kNull;
  if (!parent.is_object()) return kNull;
  const auto it = parent.find(key);
  return it == parent.end() ? kNull : *it;
}

std::string text_of(const Json &value) { return value.is_string() ? value.get<std::string>() : ""; }

std::string capped_list(const std::vector<std::string> &names, size_t limit) {
  return capped_list(names, limit, names.size());
}

std::string capped_list(const std::vector<std::string> &names, size_t limit, size_t total) {
  std::string out;
  const size_t shown = std::min(names.size(), limit);
  for (size_t i = 0; i < shown; ++i) out += (i ? ", " : "") + names[i];
  if (total > shown) out += ", and " + std::to_string(total - shown) + " more";
  return out;
}

std::string joined(const std::vector<std::string> &clauses, const char *separator) {
  std::string out;
  for (const auto &c : clauses) out += (out.empty() ? "" : separator) + c;
  return out;
}
namespace {

const char *type_name(Json::value_t t) {
  switch (t) {
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "a list";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    default:
      return "a number";
  }
}

Json &ensure(Json &parent, const char *key, Json::value_t type, const std::string &where) {
  if (!parent.is_object()) throw ShapeError(where + " is not an object");
  Json &member = parent[key];
  if (member.is_null()) {
    member = Json(type);
  } else if (member.type() != type) {
    throw ShapeError(where + "." + key + " is not " + type_name(type));
  }
  return member;
}

}  // namespace

Json &ensure_object(Json &parent, const char *key, const std::string &where) {
  return ensure(parent, key, Json::value_t::object, where);
}

Json &ensure_array(Json &parent, const char *key, const std::string &where) {
  return ensure(parent, key, Json::value_t::array, where);
}

const Json *find_member(const Json &parent, const char *key, Json::value_t type, const std::string &where) {
  if (!parent.is_object()) throw ShapeError(where + " is not an object");
  auto it = parent.find(key);
  if (it == parent.end() || it->is_null()) return nullptr;
  // Numbers come in three flavours; any of them is "a number".
  const bool number_ok = type == Json::value_t::number_integer && it->is_number();
  if (it->type() != type && !number_ok) {
    throw ShapeError(where + "." + key + " is not " + type_name(type));
  }
  return &*it;
}

std::string string_member(const Json &parent, const char *key, const std::string &where) {
  const Json *v = find_member(parent, key, Json::value_t::string, where);
  return v ? v->get<std::string>() : std::string();
}

LabelSelector LabelSelector::parse(const std::string &text) {
  LabelSelector sel;
  for (const auto &item : split_list(text)) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos) {
      sel.requirements_.emplace_back(item, std::nullopt);
      continue;
    }
    std::string key = trim(item.substr(0, eq));
    size_t value_start = eq + 1;
    if (value_start < item.size() && item[value_start] == '=') ++value_start;
    if (key.empty() || key.back() == '!') {
      throw std::invalid_argument("selector item \"" + item + "\" is not key=value or key");
    }
    sel.requirements_.emplace_back(key, trim(item.substr(value_start)));
  }
  if (sel.requirements_.empty()) throw std::invalid_argument("label selector is empty");
  return sel;
}

bool LabelSelector::matches(const Json &labels) const {
  if (!labels.is_object()) return false;
  for (const auto &[key, value] : requirements_) {
    auto it = labels.find(key);
    if (it == labels.end() || !it->is_string()) return false;
    if (value && it->get_ref<const JsonString &>() != *value) return false;
  }
  return true;
}

bool LabelSelector::matches(const JsonView &labels) const {
  if (!labels.is_object()) return false;
  // All labels found in one pass over the pod's, up to 8 at a time.
  constexpr size_t kPass = 8;
  for (size_t first = 0; first < requirements_.size(); first += kPass) {
    const size_t n = std::min(kPass, requirements_.size() - first);
    std::string_view keys[kPass];
    JsonView found[kPass];
    for (size_t i = 0; i < n; ++i) keys[i] = requirements_[first + i].first;
    labels.find_members(keys, found, n);
    for (size_t i = 0; i < n; ++i) {
      const std::optional<std::string> &value = requirements_[first + i].second;
      if (!found[i].is_string()) return false;
      if (value && found[i].string() != *value) return false;
    }
  }
  return true;
}

Json LabelSelector::to_label_selector() const {
  Json exprs = Json::array();
  for (const auto &[key, value] : requirements_) {
    if (value) {
      exprs.push_back({{"key", key}, {"operator", "In"}, {"values", {*value}}});
    } else {
      exprs.push_back({{"key", key}, {"operator", "Exists"}});
    }
  }
  return {{"matchExpressions", exprs}};
}

BoolAnnotation read_bool_annotation(const Json &object, const std::string &name, std::string *value) {
  if (!object.is_object()) return BoolAnnotation::Absent;
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return BoolAnnotation::Absent;
  auto annotations = meta->find("annotations");
  if (annotations == meta->end() || !annotations->is_object()) return BoolAnnotation::Absent;
  auto it = annotations->find(name);
  if (it == annotations->end() || it->is_null()) return BoolAnnotation::Absent;
  if (!it->is_string()) return BoolAnnotation::Invalid;
  std::string v = it->get<std::string>();
  if (value) *value = v;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  if (v.empty()) return BoolAnnotation::Absent;
  if (v == "true") return BoolAnnotation::True;
  if (v == "false") return BoolAnnotation::False;
  return BoolAnnotation::Invalid;
}

}  // namespace hci_admission::webhooks
