#include "hci_admission/kube/cluster_view.hpp"

#include <simdjson.h>

#include "hci_admission/common/files.hpp"
#include "hci_admission/common/text.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <future>
#include <system_error>

namespace hci_admission {

std::string ResourceRef::describe() const {
  std::string out = (group.empty() ? "" : group + "/") + version + " " + resource;
  if (!namespace_name.empty()) out += " in " + namespace_name;
  if (!label_selector.empty()) out += " labelled " + label_selector;
  return out;
}

void ClusterView::list_each(const ResourceRef &resource, const std::vector<std::string> &fields,
                            Deadline deadline, const ListSink &sink) const {
  for (auto &item : list(resource, fields, deadline)) sink.item(std::move(item));
}

std::vector<ListResult> list_concurrently(const ClusterView &view, const std::vector<ListQuery> &queries,
                                          Deadline deadline) {
  auto read = [&](const ListQuery &q) {
    ListResult r;
    try {
      if (q.sink) {
        view.list_each(q.resource, q.fields, deadline, *q.sink);
      } else {
        r.items = view.list(q.resource, q.fields, deadline);
      }
    } catch (const ResourceNotServed &e) {
      r.error = e.what();
      r.not_served = true;
    } catch (const std::exception &e) {
      r.error = e.what();
    }
    return r;
  };
  std::vector<ListResult> out(queries.size());
  if (queries.size() == 1) {
    out[0] = read(queries[0]);
    return out;
  }
  std::vector<std::future<ListResult>> pending(queries.size());
  for (size_t i = 0; i < queries.size(); ++i) {
    try {
      pending[i] = std::async(std::launch::async, read, std::cref(queries[i]));
    } catch (const std::system_error &) {  // no thread to be had: read it here
      out[i] = read(queries[i]);
    }
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    if (pending[i].valid()) out[i] = pending[i].get();
  }
  return out;
}

StaticClusterView::StaticClusterView(std::vector<Json> objects, std::string source)
    : objects_(std::move(objects)), source_(std::move(source)) {}

namespace {

void add_objects(const std::string &file, std::vector<Json> &out) {
  const auto text = read_file_if_present(file);
  if (!text) throw ClusterReadError("cannot read cluster state " + file);
  Json doc = Json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    throw ClusterReadError("cluster state " + file +
                           " is not a JSON object (want kubectl get -o json output)");
  }
  auto items = doc.find("items");
  if (items == doc.end()) {
    out.push_back(std::move(doc));
    return;
  }
  if (!items->is_array()) throw ClusterReadError("cluster state " + file + ": items is not a list");
  // A typed list (VolumeList) leaves apiVersion and kind off its items.
  const std::string list_kind(doc.value("kind", ""));
  const std::string item_kind =
      list_kind.size() > 4 && list_kind.compare(list_kind.size() - 4, 4, "List") == 0 && list_kind != "List"
          ? list_kind.substr(0, list_kind.size() - 4)
          : "";
  for (auto &item : *items) {
    if (!item.is_object()) throw ClusterReadError("cluster state " + file + ": an item is not an object");
    if (!item.contains("kind") && !item_kind.empty()) item["kind"] = item_kind;
    if (!item.contains("apiVersion") && doc.contains("apiVersion")) item["apiVersion"] = doc["apiVersion"];
    out.push_back(std::move(item));
  }
}

// An equality-based label selector, as the API server applies it: each
// requirement "k=v" / "k==v", "k!=v", "k" (exists) or "!k" (does not).
bool labels_match(const Json &object, const std::string &selector) {
  const Json *labels = nullptr;
  if (object.contains("metadata") && object["metadata"].is_object() &&
      object["metadata"].contains("labels")) {
    labels = &object["metadata"]["labels"];
  }
  const auto label = [&](const std::string &key) -> const Json * {
    if (labels == nullptr || !labels->is_object()) return nullptr;
    auto it = labels->find(key);
    return it != labels->end() && it->is_string() ? &*it : nullptr;
  };
  for (const auto &requirement : split_list(selector)) {
    const size_t not_equal = requirement.find("!=");
    const size_t equal = requirement.find('=');
    if (not_equal != std::string::npos) {
      const Json *have = label(trim(requirement.substr(0, not_equal)));
      if (have != nullptr && *have == trim(requirement.substr(not_equal + 2))) return false;
    } else if (equal != std::string::npos) {
      const size_t value_at = requirement.compare(equal, 2, "==") == 0 ? equal + 2 : equal + 1;
      const Json *have = label(trim(requirement.substr(0, equal)));
      if (have == nullptr || *have != trim(requirement.substr(value_at))) return false;
    } else if (requirement[0] == '!') {
      if (label(trim(requirement.substr(1))) != nullptr) return false;
    } else if (label(requirement) == nullptr) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::unique_ptr<StaticClusterView> StaticClusterView::from_path(const std::string &path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw ClusterReadError("cluster state " + path + " does not exist");
  std::vector<Json> objects;
  if (S_ISDIR(st.st_mode)) {
    std::vector<std::string> files;
    if (DIR *d = opendir(path.c_str())) {
      while (dirent *e = readdir(d)) {
        const std::string name = e->d_name;
        if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) {
          files.push_back(path);
          files.back().append("/").append(name);
        }
      }
      closedir(d);
    }
    if (files.empty()) throw ClusterReadError("cluster state folder " + path + " holds no .json files");
    std::sort(files.begin(), files.end());
    for (const auto &f : files) add_objects(f, objects);
  } else {
    add_objects(path, objects);
  }
  return std::make_unique<StaticClusterView>(std::move(objects), "offline cluster state " + path);
}

std::vector<Json> StaticClusterView::list(const ResourceRef &resource, const std::vector<std::string> &fields,
                                          Deadline deadline) const {
  std::vector<Json> out;
  list_each(resource, fields, deadline, {[&](Json &&item) { out.push_back(std::move(item)); }});
  return out;
}

void StaticClusterView::list_each(const ResourceRef &resource, const std::vector<std::string> &fields,
                                  Deadline, const ListSink &sink) const {
  const FieldMask mask = FieldMask::of(fields);
  for (const auto &o : objects_) {
    const std::string api_version(o.value("apiVersion", ""));
    const std::string group =
        api_version.find('/') == std::string::npos ? "" : api_version.substr(0, api_version.find('/'));
    if (group != resource.group || o.value("kind", "") != resource.kind) continue;
    if (!resource.namespace_name.empty()) {
      const Json &meta = o.contains("metadata") ? o["metadata"] : Json();
      if (!meta.is_object() || meta.value("namespace", "") != resource.namespace_name) continue;
    }
    if (!resource.label_selector.empty() && !labels_match(o, resource.label_selector)) continue;
    // The same pruning as a live read, so that policies see the same thing.
    const ParsedJson parsed(o.dump());
    sink.item(mask.extract(parsed.root()));
  }
}

}  // namespace hci_admission
