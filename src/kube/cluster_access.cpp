#include "hci_admission/kube/cluster_access.hpp"

#include "hci_admission/common/flags.hpp"
#include "hci_admission/kube/kubeconfig.hpp"

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <stdexcept>

namespace hci_admission {
namespace {

// A setter for a flag whose value is kept as it is, and must not be empty.
std::function<void(const std::string &)> text(const char *name, std::string &target) {
  return [name, &target](const std::string &value) {
    if (value.empty()) throw UsageError(std::string("--") + name + " needs a value");
    target = value;
  };
}

// The files of $KUBECONFIG that exist: kubectl skips the others. None
// at all is an error here, where kubectl would go on with an empty config
// (and try the in-cluster account or localhost:8080): a list that names
// nothing is a mistake worth saying.
std::vector<std::string> kubeconfig_env_files(const std::string &value) {
  std::vector<std::string> present;
  for (auto &path : kubeconfig_paths(value)) {
    if (std::filesystem::exists(path)) present.push_back(std::move(path));
  }
  if (present.empty()) throw std::runtime_error("$KUBECONFIG (" + value + ") names no file that exists");
  return present;
}

}  // namespace

std::vector<Flag> cluster_flags(ClusterAccess &access) {
  return {
      {"kubeconfig", "FILE", "kubeconfig for the Kubernetes API (default $KUBECONFIG, else in-cluster)",
       text("kubeconfig", access.kubeconfig)},
      {"kube-context", "NAME", "kubeconfig context (default: its current context)",
       text("kube-context", access.context)},
      {"context", "NAME", "the same as --kube-context (kubectl's name for it)",
       text("context", access.context)},
      {"cluster-state", "PATH", "offline: read objects from kubectl get -o json files (a file or a folder)",
       text("cluster-state", access.state_path)},
      {"cluster-read-timeout", "DURATION", "longest a cluster read may take (default 10s)",
       [&access](const std::string &v) {
         access.read_timeout = parse_duration_flag("cluster-read-timeout", v);
       }},
      {"service-account-dir", "DIR",
       "in-cluster credentials (default /var/run/secrets/kubernetes.io/serviceaccount)",
       text("service-account-dir", access.service_account_dir)},
      {"cluster-page-size", "N", "objects per LIST page (default 500, as kubectl)",
       [&access](const std::string &v) {
         access.page_size = parse_unsigned_flag("cluster-page-size", v, 100000);
         if (access.page_size == 0) throw UsageError("--cluster-page-size must be at least 1");
       }},
  };
}

std::unique_ptr<ClusterView> open_cluster(const ClusterAccess &access) {
  if (!access.state_path.empty()) return StaticClusterView::from_path(access.state_path);
  return open_kube_api(access);
}

std::unique_ptr<LiveClusterView> open_kube_api(const ClusterAccess &access) {
  // As kubectl: --kubeconfig alone (a ':' in it is part of the name), else
  // every file $KUBECONFIG lists, merged; ~/.kube/config only when
  // $KUBECONFIG is unset or empty.
  std::vector<std::string> kubeconfigs;
  const char *env = std::getenv("KUBECONFIG");
  if (!access.kubeconfig.empty()) {
    kubeconfigs = {access.kubeconfig};
  } else if (env != nullptr && *env != '\0') {
    kubeconfigs = kubeconfig_env_files(env);
  }
  const char *home = std::getenv("HOME");
  if (kubeconfigs.empty() && access.home_kubeconfig && home != nullptr) {
    const std::string config = std::string(home) + "/.kube/config";
    if (std::filesystem::is_regular_file(config)) kubeconfigs = {config};
  }
  if (!kubeconfigs.empty()) {
    return std::make_unique<LiveClusterView>(KubeCredentials::from_kubeconfigs(kubeconfigs, access.context),
                                             access.page_size);
  }
  if (std::getenv("KUBERNETES_SERVICE_HOST") != nullptr) {
    return std::make_unique<LiveClusterView>(KubeCredentials::in_cluster(access.service_account_dir),
                                             access.page_size);
  }
  return nullptr;
}

}  // namespace hci_admission
