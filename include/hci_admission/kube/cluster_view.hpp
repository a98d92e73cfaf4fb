// Read-only access to cluster objects for policies that decide from the
// cluster's state. Live (the Kubernetes API) and offline (kubectl JSON
// files) views implement the same interface, so policies and their tests do
// not care which one they get.
#pragma once

#include "hci_admission/json/json_scan.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace hci_admission {

// A resource to list, as the API names it.
struct ResourceRef {
  std::string group;           // "" for the core group
  std::string version;         // "v1", "v1beta2"
  std::string resource;        // plural: "nodes", "volumes"
  std::string kind;            // "Node", "Volume"
  std::string namespace_name;  // "" for cluster-scoped or all namespaces
  // Equality-based, as the API's labelSelector: "key=value,key2!=v,key3";
  // "" selects everything.
  std::string label_selector = {};

  // "longhorn.io/v1beta2 volumes in longhorn-system"
  std::string describe() const;
};

// The cluster could not be read: unreachable, too slow, refused, or an
// answer that is not a list. The message says which.
class ClusterReadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The API does not serve the resource at all (404 on the list): its CRD
// is not installed. A policy may count that as "none" for a kind only an
// optional component provides; offline, a kind with no objects is simply
// empty.
class ResourceNotServed : public ClusterReadError {
 public:
  using ClusterReadError::ClusterReadError;
};

using Deadline = std::chrono::steady_clock::time_point;

// Where list_each hands the objects: `item` for each, as its page is read;
// `restart` when the list starts over (an expired continue token), so that
// what came before is dropped.
struct ListSink {
  std::function<void(Json &&)> item;
  std::function<void()> restart = [] {};
};

class ClusterView {
 public:
  virtual ~ClusterView() = default;
  // Every object of `resource`, with only the `fields` kept (JSON Pointers,
  // see FieldMask). Throws ClusterReadError; never returns a partial list.
  virtual std::vector<Json> list(const ResourceRef &resource, const std::vector<std::string> &fields,
                                 Deadline deadline) const = 0;
  // The same objects, one at a time, for a caller that keeps only a digest
  // of each: 10,000 pods held as Json took 80 MiB, their digest 7 MiB.
  // Throws as list(); after a throw the sink has seen part of the list.
  // This default reads the whole list first.
  virtual void list_each(const ResourceRef &resource, const std::vector<std::string> &fields,
                         Deadline deadline, const ListSink &sink) const;
  // "offline state from F" or "the Kubernetes API at https://..."
  virtual std::string describe() const = 0;
};

// One LIST of several made together, and what it gave. With a sink the
// objects go there (list_each) and the result holds none.
struct ListQuery {
  ResourceRef resource;
  std::vector<std::string> fields;
  std::optional<ListSink> sink;
};
struct ListResult {
  std::vector<Json> items;
  std::string error;        // empty when the list was read
  bool not_served = false;  // the error was ResourceNotServed
  bool ok() const { return error.empty(); }
};

// Every query at once, each on its own thread when there is more than one
// (the API server answers them in parallel; a guard reading eight kinds
// waits for the slowest, not for the sum). Never throws: each result holds
// its items or its error.
std::vector<ListResult> list_concurrently(const ClusterView &view, const std::vector<ListQuery> &queries,
                                          Deadline deadline);

// Objects held in memory, matched by API group and kind (any version).
class StaticClusterView : public ClusterView {
 public:
  explicit StaticClusterView(std::vector<Json> objects, std::string source = "objects in memory");
  // Reads `kubectl get ... -o json` output: a file holding a List (or a
  // single object), or a folder of such .json files. Throws
  // ClusterReadError naming the file and the problem.
  static std::unique_ptr<StaticClusterView> from_path(const std::string &path);

  std::vector<Json> list(const ResourceRef &resource, const std::vector<std::string> &fields,
                         Deadline deadline) const override;
  void list_each(const ResourceRef &resource, const std::vector<std::string> &fields, Deadline deadline,
                 const ListSink &sink) const override;
  std::string describe() const override { return source_; }

 private:
  std::vector<Json> objects_;
  std::string source_;
};

}  // namespace hci_admission
