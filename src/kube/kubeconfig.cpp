#include "hci_admission/kube/kubeconfig.hpp"

#include "hci_admission/common/files.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>
#include <stdexcept>

namespace hci_admission {
namespace {

// Depth is bounded by yaml-cpp's own guard (DeepRecursion past 2,000
// levels); the node count by `budget`, so that aliases cannot expand a
// small file into a huge tree.
Json to_json(const YAML::Node &node, size_t &budget) {
  if (budget == 0) throw std::runtime_error("more than " + std::to_string(kMaxKubeconfigNodes) + " values");
  --budget;
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto &entry : node) {
        if (!entry.first.IsScalar()) {
          throw std::runtime_error("line " + std::to_string(entry.first.Mark().line + 1) +
                                   ": a key that is not a string");
        }
        out[entry.first.Scalar()] = to_json(entry.second, budget);
      }
      return out;
    }
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (const auto &item : node) out.push_back(to_json(item, budget));
      return out;
    }
    case YAML::NodeType::Scalar:
      return node.Scalar();
    default:
      return nullptr;
  }
}

// The lists merged by name, and in each the member holding the entry.
struct NamedList {
  const char *list;
  const char *inner;
};
constexpr NamedList kNamedLists[] = {{"clusters", "cluster"}, {"users", "user"}, {"contexts", "context"}};

// The file paths each kind of entry may hold, as client-go's
// ResolveLocalPaths lists them (exec and auth-provider are refused later).
constexpr const char *kClusterPaths[] = {"certificate-authority"};
constexpr const char *kUserPaths[] = {"client-certificate", "client-key", "tokenFile"};

std::string name_of(const Json &entry) {
  if (!entry.is_object()) return "";
  const auto it = entry.find("name");
  return it != entry.end() && it->is_string() ? it->get<std::string>() : "";
}

template <size_t N>
void resolve_paths(Json &entry, const char *inner, const char *const (&keys)[N], const std::string &dir) {
  if (!entry.is_object() || !entry.contains(inner) || !entry[inner].is_object()) return;
  Json &body = entry[inner];
  for (const char *key : keys) {
    const auto it = body.find(key);
    if (it == body.end() || !it->is_string()) continue;
    const std::string path = it->get<std::string>();
    if (!path.empty() && path[0] != '/') *it = dir + "/" + path;
  }
}

// A value kubectl's merge takes from a file: mergo's "not empty".
bool is_set(const Json &value) {
  if (value.is_null()) return false;
  if (value.is_string()) return !value.get_ref<const JsonString &>().empty();
  if (value.is_object() || value.is_array()) return !value.empty();
  return true;
}

}  // namespace

Json parse_kubeconfig(const std::string &text) {
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception &e) {
    // e.what() already says "yaml-cpp: error at line L, column C: ..."
    throw std::runtime_error("line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (doc.IsNull()) return Json::object();
  if (!doc.IsMap()) throw std::runtime_error("line 1: a kubeconfig is a mapping (key: value)");
  size_t budget = kMaxKubeconfigNodes;
  return to_json(doc, budget);
}

std::vector<std::string> kubeconfig_paths(const std::string &list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(':', start);
    if (end == std::string::npos) end = list.size();
    std::string path = list.substr(start, end - start);
    if (!path.empty() && std::find(out.begin(), out.end(), path) == out.end()) out.push_back(std::move(path));
    start = end + 1;
  }
  return out;
}

Json read_kubeconfig_file(const std::string &path) {
  Json doc;
  try {
    doc = parse_kubeconfig(read_file(path, "kubeconfig"));
  } catch (const std::runtime_error &e) {
    throw std::runtime_error("kubeconfig " + path + ": " + e.what());
  }
  const std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  for (const auto &named : kNamedLists) {
    const auto list = doc.find(named.list);
    if (list == doc.end() || !list->is_array()) continue;
    std::set<std::string> seen;
    for (auto &entry : *list) {
      if (!seen.insert(name_of(entry)).second) {
        throw std::runtime_error("kubeconfig " + path + ": " + named.list + " names \"" + name_of(entry) +
                                 "\" twice");
      }
      if (std::string(named.list) == "clusters") resolve_paths(entry, named.inner, kClusterPaths, dir);
      if (std::string(named.list) == "users") resolve_paths(entry, named.inner, kUserPaths, dir);
    }
  }
  return doc;
}

Json merge_kubeconfigs(const std::vector<Json> &configs) {
  Json out = Json::object();
  for (const auto &named : kNamedLists) {
    Json merged = Json::array();
    std::set<std::string> taken;
    for (const auto &config : configs) {
      const auto list = config.find(named.list);
      if (list == config.end() || !list->is_array()) continue;
      for (const auto &entry : *list) {
        if (taken.insert(name_of(entry)).second) merged.push_back(entry);
      }
    }
    out[named.list] = std::move(merged);
  }
  for (const auto &config : configs) {
    if (!config.is_object()) continue;
    for (const auto &[key, value] : config.items()) {
      const bool listed = std::any_of(std::begin(kNamedLists), std::end(kNamedLists),
                                      [&key = key](const NamedList &n) { return key == n.list; });
      if (!listed && !out.contains(key) && is_set(value)) out[key] = value;
    }
  }
  return out;
}

}  // namespace hci_admission
