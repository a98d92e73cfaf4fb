// Reading kubeconfig files: YAML (or JSON) into a Json tree, with
// yaml-cpp. It runs once at start-up on a file the operator gave.
#pragma once

#include "hci_admission/json/json.hpp"

#include <string>

namespace hci_admission {

// The document as Json: mappings as objects, sequences as arrays, every
// scalar as a string (kubeconfig values are strings: "true" stays "true"),
// null for ~, null or nothing. Anchors, aliases, flow style and block
// scalars are read as YAML defines them. Throws std::runtime_error "line
// N: ..." for text that is not YAML, a document that is not a mapping,
// or one that expands past kMaxKubeconfigNodes (aliases can multiply).
Json parse_kubeconfig(const std::string &text);

constexpr size_t kMaxKubeconfigNodes = 100000;

}  // namespace hci_admission
