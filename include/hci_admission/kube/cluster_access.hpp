// How a command reaches the cluster: the flags that say so, and the view
// they open (offline files, a kubeconfig, or the in-cluster account).
#pragma once

#include "hci_admission/common/flags.hpp"
#include "hci_admission/kube/cluster_view.hpp"
#include "hci_admission/kube/kube_client.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace hci_admission {

struct ClusterAccess {
  std::string kubeconfig;  // --kubeconfig; when empty, $KUBECONFIG is read
  std::string context;     // --kube-context, else the current context
  std::string state_path;  // --cluster-state: offline, from files
  std::string service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
  std::chrono::milliseconds read_timeout{10000};
  size_t page_size = 500;  // items per LIST page
  // Commands run by people (precheck, also as a kubectl plugin) look where
  // kubectl looks next: ~/.kube/config, before the in-cluster account. The
  // server does not: in a pod, HOME is not where its credentials are.
  bool home_kubeconfig = false;
};

// The cluster flags (--kubeconfig, --cluster-state, ...), setting `access`,
// which must outlive them.
std::vector<Flag> cluster_flags(ClusterAccess &access);
// Offline state if given, else a kubeconfig (--kubeconfig, else the files
// of $KUBECONFIG merged as kubectl merges them, those that do not exist
// skipped; with home_kubeconfig, ~/.kube/config when $KUBECONFIG is unset),
// else the in-cluster service account; nullptr when none is there. Throws
// std::runtime_error when one is given but unusable, or $KUBECONFIG names
// no file that exists.
std::unique_ptr<ClusterView> open_cluster(const ClusterAccess &access);
// The same without the offline state: the live API or nullptr.
std::unique_ptr<LiveClusterView> open_kube_api(const ClusterAccess &access);

}  // namespace hci_admission
