// Command-line flags: the server's own and those each policy declares.
#pragma once

#include "hci_admission/admission.hpp"
#include "hci_admission/cluster_view.hpp"
#include "hci_admission/kube_client.hpp"
#include "hci_admission/logging.hpp"
#include "hci_admission/self_managed_certs.hpp"
#include "hci_admission/server.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace hci_admission {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How to reach the cluster, for policies that read it.
struct ClusterAccess {
  std::string kubeconfig;  // --kubeconfig, else $KUBECONFIG
  std::string context;     // --kube-context, else the current context
  std::string state_path;  // --cluster-state: offline, from files
  std::string service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
  std::chrono::milliseconds read_timeout{10000};
  size_t page_size = 500;  // items per LIST page
};

// Sets `access` from one of the cluster flags; false for any other flag.
bool apply_cluster_flag(const std::string &flag, const std::string &value, ClusterAccess &access);
// The help lines of the cluster flags.
std::string cluster_flags_usage();
// Offline state if given, else a kubeconfig ($KUBECONFIG too), else the
// in-cluster service account; nullptr when none is there. Throws
// std::runtime_error when one is given but unusable.
std::unique_ptr<ClusterView> open_cluster(const ClusterAccess &access);
// The same without the offline state: the live API or nullptr.
std::unique_ptr<LiveClusterView> open_kube_api(const ClusterAccess &access);

struct Options {
  bool help = false;
  bool version = false;
  std::string cert_dir;
  HttpsServerConfig server;
  LogFormat log_format = LogFormat::Text;
  std::string log_level = "info";
  bool log_objects = false;
  int metrics_port = 0;        // 0: /metrics on the HTTPS port only
  std::string client_ca_file;  // mutual TLS when set
  std::vector<std::string> client_allowed_names;
  // After SIGTERM: not ready at once, still serving this long, then stop.
  std::chrono::milliseconds shutdown_delay{5000};
  std::chrono::milliseconds cert_reload_interval{2000};
  ClusterAccess cluster;
  bool self_managed = false;  // --self-managed-certs given
  SelfManagedCertsConfig self_managed_certs;
  std::vector<std::string> enabled_policies;          // empty: all
  std::map<std::string, std::string> policy_options;  // flag -> value
};

// Sets `o.self_managed_certs` from one of its flags; false for any other.
bool apply_self_managed_flag(const std::string &flag, const std::string &value, struct Options &o);

// Throws UsageError with a one-line message for an unknown flag, a missing
// value, or a value that does not parse.
Options parse_options(const std::vector<std::string> &args, const std::vector<PolicySpec> &policies);

std::string usage(const std::vector<PolicySpec> &policies);

// "7MiB", "512KiB", "1048576" -> bytes.
size_t parse_byte_size(const std::string &text);
// "10s", "500ms", "2m", "15" (seconds) -> duration.
std::chrono::milliseconds parse_duration(const std::string &text);

}  // namespace hci_admission
