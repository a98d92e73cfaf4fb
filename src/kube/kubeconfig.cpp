#include "hci_admission/kube/kubeconfig.hpp"

#include <yaml-cpp/yaml.h>

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

}  // namespace hci_admission
