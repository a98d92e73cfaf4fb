// Command-line flags: the server's own and those each policy declares.
#pragma once

#include "hci_admission/admission/policy.hpp"
#include "hci_admission/admission/router.hpp"
#include "hci_admission/certs/self_managed_certs.hpp"
#include "hci_admission/common/flags.hpp"
#include "hci_admission/kube/cluster_access.hpp"
#include "hci_admission/obs/logging.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace hci_admission {

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

// The flags are declared as tables in cli.cpp (server, cluster access,
// self-managed certificates) plus those each policy declares. Throws
// UsageError with a one-line message for an unknown flag, a missing value,
// or a value that does not parse.
Options parse_options(const std::vector<std::string> &args, const std::vector<PolicySpec> &policies);

// The server's --help; `program` is how it was called (program_name():
// "kubectl hci-admission" as the kubectl plugin), so that the usage line
// can be typed as it reads.
std::string usage(const std::vector<PolicySpec> &policies, const std::string &program);

}  // namespace hci_admission
