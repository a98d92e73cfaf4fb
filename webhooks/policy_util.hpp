// Small helpers the policies share: reading Kubernetes object shapes safely
// and parsing the option and annotation values policies accept.
#pragma once

#include "hci_admission/admission/policy.hpp"
#include "hci_admission/common/text.hpp"

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace hci_admission::webhooks {

// An object that does not have the shape its kind promises (a string where
// an object belongs). Policies answer it with a warning, never a crash.
class ShapeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The member `key` of `parent`; null when `parent` is not an object or has
// no such member. For reading shapes that may be anything.
const Json &member_or_null(const Json &parent, const char *key);
// A string value as it is; "" for anything else.
std::string text_of(const Json &value);

// Names for a message: "a, b, c", at most `limit` of them, then
// ", and N more". The one way the policies join names, so that no list an
// object's count decides can make a message unbounded.
std::string capped_list(const std::vector<std::string> &names, size_t limit);
// The same when only some of `total` names were kept (to bound memory):
// N counts those left out and those never kept.
std::string capped_list(const std::vector<std::string> &names, size_t limit, size_t total);
// Clauses of one message ("x; y"): a fixed few, so not capped.
std::string joined(const std::vector<std::string> &clauses, const char *separator);

// The member `key` of `parent` as an object, created when absent or null.
Json &ensure_object(Json &parent, const char *key, const std::string &where);
// The member `key` of `parent` as an array, created when absent or null.
Json &ensure_array(Json &parent, const char *key, const std::string &where);
// The member `key` if it is present and not null; ShapeError if it is not
// of `type`.
const Json *find_member(const Json &parent, const char *key, Json::value_t type, const std::string &where);
// A string member, "" when absent; ShapeError when it is not a string.
std::string string_member(const Json &parent, const char *key, const std::string &where);

// Equality-based label selector: "key=value,key2==value2,key3" (a bare key
// means the label must exist).
class LabelSelector {
 public:
  // Throws std::invalid_argument for an empty selector or key.
  static LabelSelector parse(const std::string &text);
  bool matches(const Json &labels) const;
  bool matches(const JsonView &labels) const;
  // The same selector as a metav1.LabelSelector.
  Json to_label_selector() const;
  const std::vector<std::pair<std::string, std::optional<std::string>>> &requirements() const {
    return requirements_;
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> requirements_;
};

// A boolean annotation: "true"/"false" in any case; absent or "" is nullopt.
// Any other value is reported through `invalid`.
enum class BoolAnnotation { Absent, True, False, Invalid };
BoolAnnotation read_bool_annotation(const Json &object, const std::string &name,
                                    std::string *value = nullptr);

}  // namespace hci_admission::webhooks
