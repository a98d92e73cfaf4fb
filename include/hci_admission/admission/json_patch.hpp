// JSON Patch (RFC 6902) operations as kube-apiserver applies them.
#pragma once

#include "hci_admission/json/json.hpp"
#include "hci_admission/json/json_write.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace hci_admission {

struct PatchOperation {
  std::string op;    // "add", "replace" or "remove"
  std::string path;  // JSON Pointer, already escaped
  Json value;        // unused for "remove"
};

class JsonPatch {
 public:
  void add(std::string path, Json value);
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

 private:
  std::vector<PatchOperation> ops_;
};

}  // namespace hci_admission
