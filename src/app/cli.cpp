#include "hci_admission/app/cli.hpp"

#include "hci_admission/common/flags.hpp"
#include "hci_admission/common/text.hpp"

#include <algorithm>
#include <iterator>
#include <set>
#include <sstream>

namespace hci_admission {
namespace {

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

using Setter = std::function<void(const std::string &)>;

// Setters for the common kinds of value; each names its flag in errors.
Setter port(const char *name, int &target) {
  return [name, &target](const std::string &v) {
    target = static_cast<int>(parse_unsigned_flag(name, v, 65535));
  };
}
Setter byte_size(const char *name, size_t &target) {
  return [name, &target](const std::string &v) { target = parse_byte_size_flag(name, v); };
}
Setter count(const char *name, size_t &target, unsigned long long max) {
  return [name, &target, max](const std::string &v) {
    target = parse_unsigned_flag(name, v, max);
    if (target == 0) throw UsageError(std::string("--") + name + " must be at least 1");
  };
}
Setter duration(const char *name, std::chrono::milliseconds &target) {
  return [name, &target](const std::string &v) { target = parse_duration_flag(name, v); };
}
Setter seconds(const char *name, std::chrono::seconds &target) {
  return [name, &target](const std::string &v) {
    target = std::chrono::duration_cast<std::chrono::seconds>(parse_duration_flag(name, v));
  };
}
// Any duration, 0 included, and at least `min`.
Setter any_duration(const char *name, std::chrono::milliseconds &target, std::chrono::milliseconds min) {
  return [name, &target, min](const std::string &v) {
    try {
      target = parse_duration(v);
    } catch (const std::invalid_argument &e) {
      throw UsageError(std::string("--") + name + ": " + e.what());
    }
    if (target < min) {
      throw UsageError(std::string("--") + name + " must be at least " + std::to_string(min.count()) + "ms");
    }
  };
}
Setter one_of(const char *name, std::string &target, const std::set<std::string> &allowed,
              const char *wanted) {
  return [name, &target, allowed, wanted](const std::string &v) {
    if (allowed.count(v) == 0) {
      throw UsageError(std::string("--") + name + " wants " + wanted + ", got \"" + v + "\"");
    }
    target = v;
  };
}
Setter on(bool &target) {
  return [&target](const std::string &) { target = true; };
}

Setter policy_list(std::vector<std::string> &target, const std::vector<PolicySpec> &policies) {
  return [&target, &policies](const std::string &v) {
    target = split_list(v);
    if (target.empty()) throw UsageError("--policies needs at least one policy");
    for (const auto &name : target) {
      if (std::none_of(policies.begin(), policies.end(),
                       [&](const PolicySpec &p) { return p.name == name; })) {
        std::string known;
        for (const auto &p : policies) known.append(known.empty() ? "" : ", ").append(p.name);
        throw UsageError("--policies: unknown policy \"" + name + "\" (known: " + known + ")");
      }
    }
  };
}

std::vector<Flag> server_flags(Options &o, const std::vector<PolicySpec> &policies) {
  auto &s = o.server;
  return {
      {"cert-dir", "DIR", "folder with tls.crt and tls.key (a Kubernetes TLS Secret); required",
       [&o](const std::string &v) { o.cert_dir = v; }},
      {"port", "N", "HTTPS port to listen on (default 9443; 0 picks a free one)", port("port", s.port)},
      {"bind", "ADDR", "address to listen on (default 0.0.0.0; :: for IPv6)",
       [&s](const std::string &v) {
         if (v.empty()) throw UsageError("--bind needs an address");
         s.bind_address = v;
       }},
      {"policies", "LIST", "comma-separated policies to serve (default: all)",
       policy_list(o.enabled_policies, policies)},
      {"max-body-size", "SIZE", "largest request body, e.g. 7MiB (default 7MiB); larger gets 413",
       byte_size("max-body-size", s.limits.max_body_bytes)},
      {"max-header-size", "SIZE", "largest request header section (default 16KiB); larger gets 431",
       byte_size("max-header-size", s.limits.max_header_bytes)},
      {"max-buffered-size", "SIZE",
       "bytes all connections together may hold beyond --max-header-size each: bodies being read, answers "
       "not "
       "yet written (default 32MiB); past it reading stops, and a body it can never hold gets 413",
       byte_size("max-buffered-size", s.max_buffered_bytes)},
      {"max-buffered-size-per-client", "SIZE",
       "what one client address may hold of --max-buffered-size (default: half of it), so that one address "
       "sending many bodies leaves room for the others",
       byte_size("max-buffered-size-per-client", s.max_buffered_bytes_per_client)},
      {"max-connections", "N", "open connections at most; more are refused (default 1024)",
       count("max-connections", s.max_connections, 1000000)},
      {"max-connections-per-client", "N",
       "open connections one client address may hold (default: half of --max-connections)",
       count("max-connections-per-client", s.max_connections_per_client, 1000000)},
      {"threads", "N", "event-loop threads (default: one per core)",
       [&s](const std::string &v) { s.threads = parse_unsigned_flag("threads", v, 256); }},
      {"max-requests-per-connection", "N", "requests before a connection is closed (default 1000)",
       count("max-requests-per-connection", s.max_requests_per_connection, 1ULL << 40)},
      {"idle-timeout", "DURATION", "close a keep-alive connection idle this long (default 120s)",
       duration("idle-timeout", s.idle_timeout)},
      {"read-timeout", "DURATION", "time a client has to send a whole request (default 10s)",
       duration("read-timeout", s.read_timeout)},
      {"write-timeout", "DURATION", "give up on a client that stops reading (default 10s)",
       duration("write-timeout", s.write_timeout)},
      {"shutdown-delay", "DURATION",
       "after SIGTERM/SIGINT: report not ready, keep serving this long, then stop (default 5s; a second "
       "signal "
       "skips it)",
       any_duration("shutdown-delay", o.shutdown_delay, std::chrono::milliseconds(0))},
      {"cert-reload-interval", "DURATION",
       "how often --cert-dir is checked for a new certificate (default 2s)",
       any_duration("cert-reload-interval", o.cert_reload_interval, std::chrono::milliseconds(100))},
      {"client-ca-file", "FILE",
       "mutual TLS: admission and /metrics need a client certificate signed by a CA in FILE (probes do not)",
       [&o](const std::string &v) {
         if (v.empty()) throw UsageError("--client-ca-file needs a file");
         o.client_ca_file = v;
       }},
      {"client-allowed-names", "LIST", "with --client-ca-file: only these certificate CNs or DNS SANs",
       [&o](const std::string &v) { o.client_allowed_names = split_list(v); }},
      {"metrics-port", "N",
       "also serve GET /metrics over plain HTTP on this port (default 0: only on the HTTPS port)",
       port("metrics-port", o.metrics_port)},
      {"log-format", "text|json", "log line format (default text)",
       [&o](const std::string &v) {
         if (v != "text" && v != "json")
           throw UsageError("--log-format wants text or json, got \"" + v + "\"");
         o.log_format = v == "json" ? LogFormat::Json : LogFormat::Text;
       }},
      {"log-objects", "", "debug: log the fields each policy was given (Secret data never)",
       on(o.log_objects)},
      {"log-level", "LEVEL", "trace, debug, info, warn, error or off (default info)",
       one_of("log-level", o.log_level, {"trace", "debug", "info", "warn", "error", "off"},
              "trace, debug, info, warn, error or off")},
      {"help", "", "print this help and exit", on(o.help)},
      {"version", "", "print the version and exit", on(o.version)},
  };
}

std::vector<Flag> self_managed_flags(Options &o) {
  auto &c = o.self_managed_certs;
  return {
      {"self-managed-certs", "NAMESPACE/NAME",
       "keep a CA and the serving certificate in this Secret (created if missing), renew them, inject the CA "
       "into --self-managed-webhooks, and write them to --cert-dir (default: off, --cert-dir is given)",
       [&o, &c](const std::string &v) {
         const size_t slash = v.find('/');
         if (slash == std::string::npos || slash == 0 || slash + 1 == v.size() ||
             v.find('/', slash + 1) != std::string::npos) {
           throw UsageError("--self-managed-certs wants NAMESPACE/NAME, got \"" + v + "\"");
         }
         o.self_managed = true;
         c.secret_namespace = v.substr(0, slash);
         c.secret_name = v.substr(slash + 1);
       }},
      {"self-managed-webhooks", "LIST",
       "webhook configurations to keep the caBundle of: validating/NAME,mutating/NAME",
       [&c](const std::string &v) {
         c.webhook_configs.clear();
         for (const auto &item : split_list(v)) {
           try {
             c.webhook_configs.push_back(WebhookConfigRef::parse(item));
           } catch (const std::invalid_argument &e) {
             throw UsageError("--self-managed-webhooks: " + std::string(e.what()));
           }
         }
       }},
      {"self-managed-dns-names", "LIST",
       "serving certificate names (default hci-admission.NS.svc,hci-admission.NS.svc.cluster.local, NS the "
       "Secret's namespace)",
       [&c](const std::string &v) {
         c.dns_names = split_list(v);
         if (c.dns_names.empty()) throw UsageError("--self-managed-dns-names needs at least one name");
       }},
      {"self-managed-ca-validity", "DURATION",
       "CA lifetime; a new CA is made with a third left (default 87600h)",
       seconds("self-managed-ca-validity", c.ca_validity)},
      {"self-managed-cert-validity", "DURATION",
       "serving certificate lifetime; renewed with a third left (default 8760h)",
       seconds("self-managed-cert-validity", c.cert_validity)},
      {"self-managed-trust-delay", "DURATION",
       "a new CA signs only this long after every webhook configuration trusts it (default 2m)",
       seconds("self-managed-trust-delay", c.trust_delay)},
      {"self-managed-check-interval", "DURATION",
       "how often the Secret and caBundles are checked (default 1m)",
       duration("self-managed-check-interval", c.check_interval)},
  };
}

// The flags each policy declares; their values land in o.policy_options.
std::vector<Flag> policy_flags(Options &o, const std::vector<PolicySpec> &policies) {
  std::vector<Flag> flags;
  for (const auto &p : policies) {
    for (const auto &opt : p.options) {
      o.policy_options[opt.flag] = opt.default_value;
      const std::string name = opt.flag;
      flags.push_back(
          {name, "VALUE",
           opt.help + "\n" + std::string(kFlagHelpIndent, ' ') + "(default \"" + opt.default_value + "\")",
           [&o, name](const std::string &v) { o.policy_options[name] = v; }});
    }
  }
  return flags;
}

// What no single flag can check: flags that need each other, and the
// self-managed defaults that depend on the Secret's namespace.
void check_combinations(Options &o, const std::vector<std::string> &args) {
  if (!o.client_allowed_names.empty() && o.client_ca_file.empty()) {
    throw UsageError("--client-allowed-names needs --client-ca-file");
  }
  if (!o.self_managed) {
    if (std::any_of(args.begin(), args.end(),
                    [](const std::string &a) { return a.rfind("--self-managed-", 0) == 0; })) {
      throw UsageError("--self-managed-* flags need --self-managed-certs NAMESPACE/NAME");
    }
    return;
  }
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
}

}  // namespace

Options parse_options(const std::vector<std::string> &args, const std::vector<PolicySpec> &policies) {
  Options o;
  FlagSet flags;
  flags.add(server_flags(o, policies));
  flags.add(cluster_flags(o.cluster));
  flags.add(self_managed_flags(o));
  flags.add(policy_flags(o, policies));
  flags.parse(args, "see --help");
  check_combinations(o, args);
  return o;
}

std::string usage(const std::vector<PolicySpec> &policies, const std::string &program) {
  Options o;  // the flags' setters need somewhere to point; nothing is parsed
  std::ostringstream s;
  s << "Usage: " << program
    << " --cert-dir DIR [flags]\n\n"
       "Kubernetes admission webhooks for Harvester HCI clusters and their guest clusters.\n\n"
       "Server flags:\n"
    << FlagSet(server_flags(o, policies)).usage();
  s << "\nCluster access (for policies that read the cluster):\n"
    << FlagSet(cluster_flags(o.cluster)).usage();
  s << "\nSelf-managed certificates (instead of cert-manager):\n" << FlagSet(self_managed_flags(o)).usage();
  s << "      uses the cluster:";
  for (size_t i = 0; i < std::size(kSelfManagedCalls); ++i) s << (i ? ", " : " ") << kSelfManagedCalls[i];
  s << "\n\nPolicies:\n";
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
    s << FlagSet(policy_flags(o, {p})).usage();
  }
  s << "\nAlso served: GET /healthz, GET /readyz.\n";
  return s.str();
}

}  // namespace hci_admission
