// Reading kubeconfig files: YAML (or JSON) into a Json tree, with
// yaml-cpp, and several of them merged as kubectl merges $KUBECONFIG. It
// runs once at start-up on files the operator gave.
#pragma once

#include "hci_admission/json/json.hpp"

#include <string>
#include <vector>

namespace hci_admission {

// The document as Json: mappings as objects, sequences as arrays, every
// scalar as a string (kubeconfig values are strings: "true" stays "true"),
// null for ~, null or nothing. Anchors, aliases, flow style and block
// scalars are read as YAML defines them. Throws std::runtime_error "line
// N: ..." for text that is not YAML, a document that is not a mapping,
// or one that expands past kMaxKubeconfigNodes (aliases can multiply).
Json parse_kubeconfig(const std::string &text);

constexpr size_t kMaxKubeconfigNodes = 100000;

// The files a $KUBECONFIG value names, as kubectl reads it: split on ':',
// empty items skipped, a file named twice kept the first time.
std::vector<std::string> kubeconfig_paths(const std::string &list);

// One kubeconfig file, parsed, with the file paths in it
// (certificate-authority, client-certificate, client-key, tokenFile) made
// relative to its folder, as kubectl resolves them before merging: in a
// merged config each entry keeps the folder of the file it came from.
// Throws std::runtime_error "kubeconfig PATH: ..." when it cannot be read
// or parsed, or names a cluster, user or context twice (kubectl refuses
// that too).
Json read_kubeconfig_file(const std::string &path);

// Kubeconfigs merged in the order given, as kubectl merges the files of
// $KUBECONFIG (client-go's ClientConfigLoadingRules.Load): clusters, users
// and contexts by name, the first file to name one giving it whole (never
// field by field); current-context and every other top-level value from
// the first file that sets it (not null, not "").
Json merge_kubeconfigs(const std::vector<Json> &configs);

}  // namespace hci_admission
