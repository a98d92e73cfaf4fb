#include "hci_admission/kube/cluster_access.hpp"

#include "hci_admission/common/flags.hpp"

#include <algorithm>
#include <cstdlib>
#include <iterator>

namespace hci_admission {
namespace {

const FlagHelp kClusterFlags[] = {
    {"kubeconfig", "FILE", "kubeconfig for the Kubernetes API (default $KUBECONFIG, else in-cluster)"},
    {"kube-context", "NAME", "kubeconfig context (default: its current context)"},
    {"cluster-state", "PATH", "offline: read objects from kubectl get -o json files (a file or a folder)"},
    {"cluster-read-timeout", "DURATION", "longest a cluster read may take (default 10s)"},
    {"service-account-dir", "DIR",
     "in-cluster credentials (default /var/run/secrets/kubernetes.io/serviceaccount)"},
    {"cluster-page-size", "N", "objects per LIST page (default 500, as kubectl)"},
};

}  // namespace

bool is_cluster_flag(const std::string &flag) {
  return std::any_of(std::begin(kClusterFlags), std::end(kClusterFlags),
                     [&](const FlagHelp &f) { return flag == f.flag; });
}

bool apply_cluster_flag(const std::string &flag, const std::string &value, ClusterAccess &access) {
  if (flag == "kubeconfig") {
    access.kubeconfig = value;
  } else if (flag == "kube-context") {
    access.context = value;
  } else if (flag == "cluster-state") {
    access.state_path = value;
  } else if (flag == "service-account-dir") {
    access.service_account_dir = value;
  } else if (flag == "cluster-read-timeout") {
    access.read_timeout = parse_duration_flag(flag, value);
  } else if (flag == "cluster-page-size") {
    access.page_size = parse_unsigned_flag(flag, value, 100000);
    if (access.page_size == 0) throw UsageError("--cluster-page-size must be at least 1");
  } else {
    return false;
  }
  if (value.empty()) throw UsageError("--" + flag + " needs a value");
  return true;
}

std::string cluster_flags_usage() {
  std::string s;
  for (const auto &f : kClusterFlags) s += format_flag_help(f.flag, f.arg, f.help);
  return s;
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
