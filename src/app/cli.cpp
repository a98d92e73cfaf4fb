#include "hci_admission/app/cli.hpp"

#include "hci_admission/common/flags.hpp"
#include "hci_admission/common/text.hpp"
#include "hci_admission/kube/kube_client.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <set>
#include <sstream>

namespace hci_admission {
namespace {

const FlagHelp kServerFlags[] = {
    {"cert-dir", "DIR", "folder with tls.crt and tls.key (a Kubernetes TLS Secret); required"},
    {"port", "N", "HTTPS port to listen on (default 9443; 0 picks a free one)"},
    {"bind", "ADDR", "address to listen on (default 0.0.0.0; :: for IPv6)"},
    {"policies", "LIST", "comma-separated policies to serve (default: all)"},
    {"max-body-size", "SIZE", "largest request body, e.g. 7MiB (default 7MiB); larger gets 413"},
    {"max-header-size", "SIZE", "largest request header section (default 16KiB); larger gets 431"},
    {"max-buffered-size", "SIZE",
     "bytes all connections together may hold beyond --max-header-size each: bodies being read, answers not "
     "yet written (default 32MiB); past it reading stops, and a body it can never hold gets 413"},
    {"max-connections", "N", "open connections at most; more are refused (default 1024)"},
    {"max-connections-per-client", "N",
     "open connections one client address may hold (default: half of --max-connections)"},
    {"threads", "N", "event-loop threads (default: one per core)"},
    {"max-requests-per-connection", "N", "requests before a connection is closed (default 1000)"},
    {"idle-timeout", "DURATION", "close a keep-alive connection idle this long (default 120s)"},
    {"read-timeout", "DURATION", "time a client has to send a whole request (default 10s)"},
    {"write-timeout", "DURATION", "give up on a client that stops reading (default 10s)"},
    {"shutdown-delay", "DURATION",
     "after SIGTERM/SIGINT: report not ready, keep serving this long, then stop (default 5s; a second signal "
     "skips it)"},
    {"cert-reload-interval", "DURATION",
     "how often --cert-dir is checked for a new certificate (default 2s)"},
    {"client-ca-file", "FILE",
     "mutual TLS: admission and /metrics need a client certificate signed by a CA in FILE (probes do not)"},
    {"client-allowed-names", "LIST", "with --client-ca-file: only these certificate CNs or DNS SANs"},
    {"metrics-port", "N",
     "also serve GET /metrics over plain HTTP on this port (default 0: only on the HTTPS port)"},
    {"log-format", "text|json", "log line format (default text)"},
    {"log-objects", "", "debug: log the fields each policy was given (Secret data never)"},
    {"log-level", "LEVEL", "trace, debug, info, warn, error or off (default info)"},
    {"help", "", "print this help and exit"},
    {"version", "", "print the version and exit"},
};

const FlagHelp kSelfManagedFlags[] = {
    {"self-managed-certs", "NAMESPACE/NAME",
     "keep a CA and the serving certificate in this Secret (created if missing), renew them, inject the CA "
     "into "
     "--self-managed-webhooks, and write them to --cert-dir (default: off, --cert-dir is given)"},
    {"self-managed-webhooks", "LIST",
     "webhook configurations to keep the caBundle of: validating/NAME,mutating/NAME"},
    {"self-managed-dns-names", "LIST",
     "serving certificate names (default hci-admission.NS.svc,hci-admission.NS.svc.cluster.local, NS the "
     "Secret's namespace)"},
    {"self-managed-ca-validity", "DURATION",
     "CA lifetime; a new CA is made with a third left (default 87600h)"},
    {"self-managed-cert-validity", "DURATION",
     "serving certificate lifetime; renewed with a third left (default 8760h)"},
    {"self-managed-trust-delay", "DURATION",
     "a new CA signs only this long after every webhook configuration trusts it (default 2m)"},
    {"self-managed-check-interval", "DURATION",
     "how often the Secret and caBundles are checked (default 1m)"},
};

// The API calls SelfManagedCertificates makes, for RBAC (checked against
// manifests/ by test/manifests_test.py).
const char *const kSelfManagedCalls[] = {
    "create secrets in the Secret's namespace",
    "get secrets in the Secret's namespace",
    "update secrets in the Secret's namespace",
    "get validatingwebhookconfigurations.admissionregistration.k8s.io",
    "patch validatingwebhookconfigurations.admissionregistration.k8s.io",
    "get mutatingwebhookconfigurations.admissionregistration.k8s.io",
    "patch mutatingwebhookconfigurations.admissionregistration.k8s.io",
};

}  // namespace

Options parse_options(const std::vector<std::string> &args, const std::vector<PolicySpec> &policies) {
  Options o;
  std::map<std::string, const PolicyOption *> policy_flags;
  for (const auto &p : policies) {
    for (const auto &opt : p.options) {
      policy_flags[opt.flag] = &opt;
      o.policy_options[opt.flag] = opt.default_value;
    }
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string &arg = args[i];
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      throw UsageError("unexpected argument \"" + arg + "\" (see --help)");
    }
    std::string flag = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_value = true;
    }
    if (flag == "help" || flag == "version" || flag == "log-objects") {
      if (has_value) throw UsageError("--" + flag + " takes no value");
      (flag == "help" ? o.help : flag == "version" ? o.version : o.log_objects) = true;
      continue;
    }
    auto listed = [&](const auto &table) {
      return std::any_of(std::begin(table), std::end(table),
                         [&](const FlagHelp &f) { return flag == f.flag; });
    };
    const bool known = policy_flags.count(flag) > 0 || listed(kServerFlags) || is_cluster_flag(flag) ||
                       listed(kSelfManagedFlags);
    if (!known) throw UsageError("unknown flag --" + flag + " (see --help)");
    if (!has_value) {
      if (i + 1 >= args.size()) throw UsageError("--" + flag + " needs a value");
      value = args[++i];
    }

    if (apply_cluster_flag(flag, value, o.cluster) || apply_self_managed_flag(flag, value, o)) {
      continue;
    } else if (flag == "cert-dir") {
      o.cert_dir = value;
    } else if (flag == "port") {
      o.server.port = static_cast<int>(parse_unsigned_flag(flag, value, 65535));
    } else if (flag == "bind") {
      if (value.empty()) throw UsageError("--bind needs an address");
      o.server.bind_address = value;
    } else if (flag == "policies") {
      o.enabled_policies = split_list(value);
      if (o.enabled_policies.empty()) throw UsageError("--policies needs at least one policy");
      for (const auto &name : o.enabled_policies) {
        if (std::none_of(policies.begin(), policies.end(),
                         [&](const PolicySpec &p) { return p.name == name; })) {
          std::string known_names;
          for (const auto &p : policies) known_names += (known_names.empty() ? "" : ", ") + p.name;
          throw UsageError("--policies: unknown policy \"" + name + "\" (known: " + known_names + ")");
        }
      }
    } else if (flag == "max-body-size") {
      o.server.limits.max_body_bytes = parse_byte_size_flag(flag, value);
    } else if (flag == "max-header-size") {
      o.server.limits.max_header_bytes = parse_byte_size_flag(flag, value);
    } else if (flag == "max-buffered-size") {
      o.server.max_buffered_bytes = parse_byte_size_flag(flag, value);
    } else if (flag == "threads") {
      o.server.threads = parse_unsigned_flag(flag, value, 256);
    } else if (flag == "max-connections") {
      o.server.max_connections = parse_unsigned_flag(flag, value, 1000000);
      if (o.server.max_connections == 0) throw UsageError("--max-connections must be at least 1");
    } else if (flag == "max-connections-per-client") {
      o.server.max_connections_per_client = parse_unsigned_flag(flag, value, 1000000);
      if (o.server.max_connections_per_client == 0) {
        throw UsageError("--max-connections-per-client must be at least 1");
      }
    } else if (flag == "max-requests-per-connection") {
      o.server.max_requests_per_connection = parse_unsigned_flag(flag, value, 1ull << 40);
      if (o.server.max_requests_per_connection == 0) {
        throw UsageError("--max-requests-per-connection must be at least 1");
      }
    } else if (flag == "idle-timeout") {
      o.server.idle_timeout = parse_duration_flag(flag, value);
    } else if (flag == "read-timeout") {
      o.server.read_timeout = parse_duration_flag(flag, value);
    } else if (flag == "write-timeout") {
      o.server.write_timeout = parse_duration_flag(flag, value);
    } else if (flag == "shutdown-delay") {
      try {
        o.shutdown_delay = parse_duration(value);
      } catch (const std::invalid_argument &e) {
        throw UsageError("--shutdown-delay: " + std::string(e.what()));
      }
    } else if (flag == "cert-reload-interval") {
      try {
        o.cert_reload_interval = parse_duration(value);
      } catch (const std::invalid_argument &e) {
        throw UsageError("--cert-reload-interval: " + std::string(e.what()));
      }
      if (o.cert_reload_interval.count() < 100)
        throw UsageError("--cert-reload-interval must be at least 100ms");
    } else if (flag == "client-ca-file") {
      if (value.empty()) throw UsageError("--client-ca-file needs a file");
      o.client_ca_file = value;
    } else if (flag == "client-allowed-names") {
      o.client_allowed_names = split_list(value);
    } else if (flag == "metrics-port") {
      o.metrics_port = static_cast<int>(parse_unsigned_flag(flag, value, 65535));
    } else if (flag == "log-format") {
      if (value == "text") {
        o.log_format = LogFormat::Text;
      } else if (value == "json") {
        o.log_format = LogFormat::Json;
      } else {
        throw UsageError("--log-format wants text or json, got \"" + value + "\"");
      }
    } else if (flag == "log-level") {
      static const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error", "off"};
      if (levels.count(value) == 0) {
        throw UsageError("--log-level wants trace, debug, info, warn, error or off, got \"" + value + "\"");
      }
      o.log_level = value;
    } else {
      o.policy_options[flag] = value;
    }
  }
  if (!o.client_allowed_names.empty() && o.client_ca_file.empty()) {
    throw UsageError("--client-allowed-names needs --client-ca-file");
  }
  if (o.self_managed) {
    auto &c = o.self_managed_certs;
    if (c.dns_names.empty()) {
      c.dns_names = {"hci-admission." + c.secret_namespace + ".svc",
                     "hci-admission." + c.secret_namespace + ".svc.cluster.local"};
    }
    try {
      c.check();
    } catch (const std::invalid_argument &e) {
      throw UsageError(e.what());
    }
  } else if (std::any_of(args.begin(), args.end(),
                         [](const std::string &a) { return a.rfind("--self-managed-", 0) == 0; })) {
    throw UsageError("--self-managed-* flags need --self-managed-certs NAMESPACE/NAME");
  }
  return o;
}

bool apply_self_managed_flag(const std::string &flag, const std::string &value, Options &o) {
  auto &c = o.self_managed_certs;
  auto duration = [&] {
    const auto ms = parse_duration_flag(flag, value);
    return std::chrono::duration_cast<std::chrono::seconds>(ms);
  };
  if (flag == "self-managed-certs") {
    const size_t slash = value.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == value.size() ||
        value.find('/', slash + 1) != std::string::npos) {
      throw UsageError("--self-managed-certs wants NAMESPACE/NAME, got \"" + value + "\"");
    }
    o.self_managed = true;
    c.secret_namespace = value.substr(0, slash);
    c.secret_name = value.substr(slash + 1);
  } else if (flag == "self-managed-webhooks") {
    c.webhook_configs.clear();
    for (const auto &item : split_list(value)) {
      try {
        c.webhook_configs.push_back(WebhookConfigRef::parse(item));
      } catch (const std::invalid_argument &e) {
        throw UsageError("--self-managed-webhooks: " + std::string(e.what()));
      }
    }
  } else if (flag == "self-managed-dns-names") {
    c.dns_names = split_list(value);
    if (c.dns_names.empty()) throw UsageError("--self-managed-dns-names needs at least one name");
  } else if (flag == "self-managed-ca-validity") {
    c.ca_validity = duration();
  } else if (flag == "self-managed-cert-validity") {
    c.cert_validity = duration();
  } else if (flag == "self-managed-trust-delay") {
    c.trust_delay = duration();
  } else if (flag == "self-managed-check-interval") {
    c.check_interval = parse_duration_flag(flag, value);
  } else {
    return false;
  }
  return true;
}

std::string usage(const std::vector<PolicySpec> &policies) {
  std::ostringstream s;
  s << "Usage: hci-admission --cert-dir DIR [flags]\n\n"
       "Kubernetes admission webhooks for Harvester HCI clusters and their guest clusters.\n\n"
       "Server flags:\n";
  auto line = [&s](const std::string &flag, const std::string &arg, const std::string &help) {
    s << format_flag_help(flag, arg, help);
  };
  for (const auto &f : kServerFlags) line(f.flag, f.arg, f.help);
  s << "\nCluster access (for policies that read the cluster):\n" << cluster_flags_usage();
  s << "\nSelf-managed certificates (instead of cert-manager):\n";
  for (const auto &f : kSelfManagedFlags) line(f.flag, f.arg, f.help);
  s << "      uses the cluster:";
  for (size_t i = 0; i < std::size(kSelfManagedCalls); ++i) s << (i ? ", " : " ") << kSelfManagedCalls[i];
  s << "\n";
  s << "\nPolicies:\n";
  for (const auto &p : policies) {
    s << "  " << p.path() << "\n      " << p.summary << "\n";
    for (const auto &rule : p.rules) {
      s << "      handles:";
      for (size_t i = 0; i < rule.operations.size(); ++i) s << (i ? "," : " ") << rule.operations[i];
      s << " " << rule.describe_kind() << " (" << rule.resource << ")\n";
    }
    if (!p.cluster_reads.empty()) {
      s << "      reads the cluster:";
      for (size_t i = 0; i < p.cluster_reads.size(); ++i) s << (i ? ", " : " ") << p.cluster_reads[i];
      s << "\n";
    }
    for (const auto &opt : p.options) {
      line(opt.flag, "VALUE",
           opt.help + "\n" + std::string(kFlagHelpIndent, ' ') + "(default \"" + opt.default_value + "\")");
    }
  }
  s << "\nAlso served: GET /healthz, GET /readyz.\n";
  return s.str();
}

}  // namespace hci_admission
