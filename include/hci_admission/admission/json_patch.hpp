// JSON Patch (RFC 6902) operations as kube-apiserver applies them.
#pragma once

#include "hci_admission/json/json.hpp"
#include "hci_admission/json/json_write.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hci_admission {

// A JSON value written out once: for a value a policy adds to many patches
// (its constants), built when the policy is. Adding it to a patch shares
// the text; writing the patch copies it. For the CSI Pod's patch, writing
// the same values as trees on every review (copy, write, free) took 24k
// of 178k instructions (callgrind).
class RenderedJson {
 public:
  RenderedJson() = default;  // none: `has_value()` is false
  // A factory, not a constructor, so that a braced list given to
  // JsonPatch::add is always a Json.
  static RenderedJson of(const Json &value) {
    RenderedJson out;
    out.text_ = std::make_shared<const std::string>(json_text(value));
    return out;
  }
  bool has_value() const { return text_ != nullptr; }
  std::string_view text() const { return *text_; }
  Json to_json() const { return Json::parse(*text_); }
  // The very same text (not just equal text).
  bool shares_text_with(const RenderedJson &other) const { return text_ == other.text_; }

 private:
  std::shared_ptr<const std::string> text_;
};

struct PatchOperation {
  std::string_view op;    // "add", "replace" or "remove" (static text)
  std::string path;       // JSON Pointer, already escaped
  Json value;             // unused for "remove" and when `rendered` has a value
  RenderedJson rendered;  // the value, when it was added written out

  // The value as a tree, whichever way it was given.
  Json value_json() const { return rendered.has_value() ? rendered.to_json() : value; }
};

class JsonPatch {
 public:
  void add(std::string path, Json value);
  // The same with a value written out beforehand; `value` is shared, not
  // copied.
  void add(std::string path, const RenderedJson &value);
  void replace(std::string path, Json value);
  void remove(std::string path);

  // Appends the operations that turn `before` into `after` at `path`.
  // Prefers add: a new or changed object member is an "add" (which creates
  // or overwrites it), an array that only grew gets "/-" appends, so an
  // existing array is never replaced as a whole. Array elements that changed
  // are replaced one by one; removed members and trailing elements are
  // removed.
  // `after` is consumed: its subtrees move into the operations.
  void diff(const std::string &path, const Json &before, Json &&after);

  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }
  const std::vector<PatchOperation> &operations() const { return ops_; }

  Json to_json() const;
  // The patch as JSON text, written without building a tree first.
  std::string dump() const;
  // The same, appended to `out` (so that a caller can reuse one buffer).
  void dump_to(std::string &out) const;
  // Every value was added written out (RenderedJson).
  bool all_rendered() const;
  // Both patches have the same operations and paths, and every value of
  // both is the same written-out text: so both are written out alike,
  // which this tells without writing either.
  bool same_rendered(const JsonPatch &other) const;

 private:
  std::vector<PatchOperation> ops_;
};

}  // namespace hci_admission
