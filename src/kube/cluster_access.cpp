#include "hci_admission/kube/cluster_access.hpp"

#include "hci_admission/common/flags.hpp"

#include <cstdlib>
#include <filesystem>
#include <functional>

namespace hci_admission {
namespace {

// A setter for a flag whose value is kept as it is, and must not be empty.
std::function<void(const std::string &)> text(const char *name, std::string &target) {
  return [name, &target](const std::string &value) {
    if (value.empty()) throw UsageError(std::string("--") + name + " needs a value");
    target = value;
  };
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
  std::string kubeconfig = access.kubeconfig;
  if (kubeconfig.empty() && std::getenv("KUBECONFIG") != nullptr) {
    kubeconfig = std::getenv("KUBECONFIG");
    kubeconfig = kubeconfig.substr(0, kubeconfig.find(':'));  // the first file of a list
  }
  const char *home = std::getenv("HOME");
  if (kubeconfig.empty() && access.home_kubeconfig && home != nullptr) {
    const std::string config = std::string(home) + "/.kube/config";
    if (std::filesystem::is_regular_file(config)) kubeconfig = config;
  }
  if (!kubeconfig.empty()) {
    return std::make_unique<LiveClusterView>(KubeCredentials::from_kubeconfig(kubeconfig, access.context),
                                             access.page_size);
  }
  if (std::getenv("KUBERNETES_SERVICE_HOST") != nullptr) {
    return std::make_unique<LiveClusterView>(KubeCredentials::in_cluster(access.service_account_dir),
                                             access.page_size);
  }
  return nullptr;
}

}  // namespace hci_admission
