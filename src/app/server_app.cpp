#include "hci_admission/app/server_app.hpp"

#include "hci_admission/admission/router.hpp"
#include "hci_admission/certs/self_managed_certs.hpp"
#include "hci_admission/kube/cluster_access.hpp"
#include "hci_admission/net/https_server.hpp"
#include "hci_admission/net/tls.hpp"
#include "hci_admission/obs/logging.hpp"
#include "hci_admission/obs/metrics.hpp"

#include <httplib.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <map>
#include <memory>
#include <thread>

namespace hci_admission {
namespace {

std::string join(const std::vector<std::string> &items) {
  std::string out;
  for (const auto &i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

// With --self-managed-certs: the Secret, the caBundles and the files in
// --cert-dir are set up before the first certificate is loaded. Null
// without the flag.
struct SelfManaged {
  std::unique_ptr<LiveClusterView> kube_api;
  std::unique_ptr<SelfManagedCertificates> certs;
};

SelfManaged start_self_managed_certs(const Options &options) {
  SelfManaged out;
  if (!options.self_managed) return out;
  try {
    out.kube_api = open_kube_api(options.cluster);
    if (!out.kube_api) {
      throw StartupError(
          2, "--self-managed-certs needs the Kubernetes API: run in a cluster or give --kubeconfig");
    }
    SelfManagedCertsConfig config = options.self_managed_certs;
    config.cert_dir = options.cert_dir;
    config.request_timeout = options.cluster.read_timeout;
    out.certs = std::make_unique<SelfManagedCertificates>(config, *out.kube_api);
  } catch (const StartupError &) {
    throw;
  } catch (const std::exception &e) {
    throw StartupError(2, e.what());
  }
  // The first certificate before serving; the API may still be coming up.
  for (int attempt = 1;; ++attempt) {
    try {
      out.certs->reconcile();
      return out;
    } catch (const std::exception &e) {
      if (attempt == 30) throw StartupError(1, std::string("self-managed certificates: ") + e.what());
      LogLine("self-managed certificates: not ready yet, trying again")
          .field("attempt", attempt)
          .field("error", e.what())
          .warn();
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
  }
}

bool enabled(const Options &options, const PolicySpec &spec) {
  const auto &names = options.enabled_policies;
  return names.empty() || std::find(names.begin(), names.end(), spec.name) != names.end();
}

// The cluster, when an enabled policy reads it; null otherwise or when
// there is no way to reach it.
std::unique_ptr<ClusterView> open_cluster_for(const Options &options, const std::vector<PolicySpec> &specs) {
  const bool needed = std::any_of(specs.begin(), specs.end(), [&](const PolicySpec &s) {
    return enabled(options, s) && s.reads_cluster;
  });
  if (!needed) return nullptr;
  try {
    return open_cluster(options.cluster);
  } catch (const std::exception &e) {
    throw StartupError(1, e.what());
  }
}

// Builds each enabled policy into the router; returns the paths served.
std::vector<std::string> add_policies(AdmissionRouter &router, const Options &options,
                                      const std::vector<PolicySpec> &specs, const ClusterView *cluster) {
  std::vector<std::string> served;
  for (const auto &spec : specs) {
    if (!enabled(options, spec)) continue;
    if (spec.reads_cluster && cluster == nullptr && options.enabled_policies.empty()) {
      // Asked for by default only: serve the rest, and say why this one is
      // not there. Named in --policies, it is an error (below).
      LogLine("policy not served: no cluster access")
          .field("policy", spec.name)
          .field("hint", "give --kubeconfig, run in a cluster, or --cluster-state")
          .warn();
      continue;
    }
    std::map<std::string, std::string> values;
    for (const auto &opt : spec.options) values[opt.flag] = options.policy_options.at(opt.flag);
    try {
      router.add(spec, spec.build(PolicyConfig(values, cluster)));
    } catch (const std::invalid_argument &e) {
      const std::string hint =
          spec.reads_cluster && cluster == nullptr ? " (or leave it out with --policies)" : "";
      throw StartupError(2, spec.name + ": " + e.what() + hint);
    }
    served.push_back(spec.path());
  }
  return served;
}

// Plain HTTP for scrapers that do not speak TLS to pods; /metrics only.
// Null without --metrics-port.
std::unique_ptr<httplib::Server> bind_metrics_port(const Options &options) {
  if (options.metrics_port <= 0) return nullptr;
  auto server = std::make_unique<httplib::Server>();
  // A scraper every few seconds needs one thread, not httplib's eight.
  server->new_task_queue = [] { return new httplib::ThreadPool(1); };
  server->Get("/metrics", [](const httplib::Request &, httplib::Response &res) {
    res.set_content(metrics().render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  if (!server->bind_to_port(options.server.bind_address, options.metrics_port)) {
    throw StartupError(1, "cannot listen on " + options.server.bind_address + ":" +
                              std::to_string(options.metrics_port) + " for --metrics-port");
  }
  return server;
}

// Functions reading this run's reloader and self-managed certificates,
// registered through `m`, which must be destroyed before them.
void register_certificate_metrics(ScopedMetricFunctions &m, const std::shared_ptr<TlsContext> &tls,
                                  const CertificateReloader &reloader,
                                  const SelfManagedCertificates *self_managed) {
  m.gauge("hci_admission_certificate_expiry_timestamp_seconds",
          "When the serving certificate in use expires, in seconds since the epoch.", [tls] {
            auto c = tls->current();
            return c ? std::chrono::duration<double>(c->not_after().time_since_epoch()).count() : 0.0;
          });
  // controller-runtime's certwatcher names; the first load counts as a read.
  m.counter("certwatcher_read_certificate_total", "Total number of certificate reads",
            [&reloader] { return 1.0 + static_cast<double>(reloader.reloads() + reloader.errors()); });
  m.counter("certwatcher_read_certificate_errors_total", "Total number of certificate read errors",
            [&reloader] { return static_cast<double>(reloader.errors()); });
  if (self_managed == nullptr) return;
  m.counter("hci_admission_self_managed_cert_passes_total",
            "Checks of the certificate Secret and caBundles that completed.",
            [self_managed] { return static_cast<double>(self_managed->passes()); });
  m.counter("hci_admission_self_managed_cert_failures_total",
            "Checks of the certificate Secret and caBundles that failed (API unreachable or refused).",
            [self_managed] { return static_cast<double>(self_managed->failures()); });
  m.counter("hci_admission_self_managed_cert_changes_total",
            "Writes of the certificate Secret: issued or renewed certificates, CA switches.",
            [self_managed] { return static_cast<double>(self_managed->renewals()); });
}

// Waits for SIGTERM or SIGINT, then: not ready at once but still serving
// for the shutdown delay (kube-proxy and the API server need a few seconds
// to stop sending here; the most reported webhook outage is a pod that
// stops listening before its endpoint is gone), then stops the server. A
// second signal skips the delay.
class StopSignalWaiter {
 public:
  StopSignalWaiter(const sigset_t &signals, std::chrono::milliseconds delay, HttpsServer &server)
      : signals_(signals), delay_(delay), server_(server), thread_([this] { wait(); }) {}
  StopSignalWaiter(const StopSignalWaiter &) = delete;
  StopSignalWaiter &operator=(const StopSignalWaiter &) = delete;
  ~StopSignalWaiter() {
    // Stopped without a signal: wake the waiter so it can be joined, with
    // one of the signals it waits for (blocked in every thread and taken by
    // sigwait: it wakes the waiter, it does not terminate anything). Not
    // SIGTERM regardless: a caller stopping on other signals (the unit
    // test, on SIGUSR2) would have it kill the process.
    if (!signalled_.exchange(true)) {
      pthread_kill(thread_.native_handle(), wake_signal());  // NOLINT(bugprone-bad-signal-to-kill-thread)
    }
    thread_.join();
  }
  bool draining() const { return draining_; }

 private:
  int wake_signal() const {
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sigismember(&signals_, sig) == 1) return sig;
    }
    return SIGTERM;
  }

  void wait() {
    int sig = 0;
    sigwait(&signals_, &sig);
    if (!signalled_.exchange(true)) {
      draining_ = true;
      LogLine("stopping: not ready, still serving")
          .field("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT")
          .field("delay_ms", static_cast<long long>(delay_.count()))
          .info();
      const auto secs = std::chrono::duration_cast<std::chrono::seconds>(delay_);
      timespec wait{static_cast<time_t>(secs.count()), static_cast<long>((delay_ - secs).count() * 1000000)};
      if (delay_.count() > 0 && sigtimedwait(&signals_, nullptr, &wait) > 0) {
        LogLine("second signal: stopping now").info();
      }
      LogLine("closing the listener; finishing requests in flight").info();
    }
    server_.stop();
  }

  sigset_t signals_;
  std::chrono::milliseconds delay_;
  HttpsServer &server_;
  std::atomic<bool> signalled_{false};
  std::atomic<bool> draining_{false};
  std::thread thread_;  // last: started once the state it uses exists
};

}  // namespace

int run_server(const Options &options, const std::vector<PolicySpec> &specs, const sigset_t &stop_signals) {
  SelfManaged self_managed = start_self_managed_certs(options);
  std::shared_ptr<const ServingCertificate> cert;
  try {
    cert = ServingCertificate::load(options.cert_dir);
  } catch (const TlsError &e) {
    throw StartupError(1, e.what());
  }
  const std::unique_ptr<ClusterView> cluster = open_cluster_for(options, specs);
  auto router = std::make_shared<AdmissionRouter>(options.cluster.read_timeout);
  router->set_log_objects(options.log_objects);
  register_process_metrics(metrics());
  const std::vector<std::string> served = add_policies(*router, options, specs, cluster.get());

  auto tls = std::make_shared<TlsContext>(cert);
  if (!options.client_ca_file.empty()) {
    try {
      tls->require_client_certificates(options.client_ca_file);
    } catch (const TlsError &e) {
      throw StartupError(1, e.what());
    }
    router->require_client_certificates(options.client_allowed_names);
  }
  std::unique_ptr<HttpsServer> server;
  try {
    server = std::make_unique<HttpsServer>(options.server, tls,
                                           [router](const HttpRequestView &r) { return router->handle(r); });
    server->bind();
  } catch (const std::exception &e) {
    throw StartupError(1, e.what());
  }
  const std::unique_ptr<httplib::Server> metrics_server = bind_metrics_port(options);

  StopSignalWaiter stop(stop_signals, options.shutdown_delay, *server);
  HttpsServer *srv = server.get();
  router->set_readiness([srv, tls, &stop]() -> std::string {
    if (stop.draining()) return "shutting down";
    if (!srv->listening()) return "not listening";
    auto c = tls->current();
    if (!c || !c->valid_at(std::chrono::system_clock::now())) return "no valid serving certificate";
    return "";
  });
  LogLine("serving")
      .field("version", HCI_ADMISSION_VERSION)
      .field("address", options.server.bind_address + ":" + std::to_string(server->port()))
      .field("paths", join(served))
      .field("cluster", cluster ? cluster->describe() : "none")
      .field("certificate", cert->subject())
      .field("names", join(cert->names()))
      .field("not_after", format_utc(cert->not_after()))
      .info();
  CertificateReloader reloader(options.cert_dir, tls, options.cert_reload_interval);
  // Removed when run_server returns, before the reloader and the
  // self-managed certificates they read: the registry outlives this run,
  // and a scrape after it (or during a second run in the same process)
  // would otherwise call into freed memory.
  ScopedMetricFunctions certificate_metrics(metrics());
  register_certificate_metrics(certificate_metrics, tls, reloader, self_managed.certs.get());
  if (self_managed.certs) self_managed.certs->start();
  std::thread metrics_thread;
  if (metrics_server) metrics_thread = std::thread([&] { metrics_server->listen_after_bind(); });
  server->serve();
  if (metrics_server) {
    metrics_server->stop();
    metrics_thread.join();
  }
  if (self_managed.certs) self_managed.certs->stop();
  return 0;
}

}  // namespace hci_admission
