// hci-admission: wires flags, TLS, the policies and the server together.
#include "hci_admission/cli.hpp"
#include "hci_admission/kube_client.hpp"
#include "hci_admission/logging.hpp"
#include "hci_admission/metrics.hpp"
#include "hci_admission/server.hpp"
#include "hci_admission/tls.hpp"
#include "registry.hpp"

#include <httplib.h>
#include <malloc.h>
#include <pthread.h>
#include <algorithm>
#include <csignal>
#include <ctime>
#include <iostream>
#include <thread>

using namespace hci_admission;

namespace {

std::string join(const std::vector<std::string> &items) {
  std::string out;
  for (const auto &i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

int fail(int code, const std::string &message) {
  std::cerr << "hci-admission: " << message << std::endl;
  return code;
}

}  // namespace

int main(int argc, char **argv) {
  // Request bodies over 128 KiB get pages of their own, given back when
  // freed. glibc would otherwise raise the threshold to the size of the
  // largest block freed, and later bodies would stay in the heap: 60
  // hostile 7 MiB bodies peaked at 38 MiB RSS with the sliding threshold,
  // 32 MiB with it fixed at glibc's default.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  // Signals go to one thread that waits for them; a closed peer must not
  // kill the process through SIGPIPE.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  const auto specs = webhooks::builtin_policies();
  if (argc > 1) {
    for (const auto &command : webhooks::builtin_commands()) {
      if (command.name == argv[1]) return command.run(std::vector<std::string>(argv + 2, argv + argc));
    }
  }
  Options options;
  try {
    options = parse_options(std::vector<std::string>(argv + 1, argv + argc), specs);
  } catch (const UsageError &e) {
    return fail(2, e.what());
  }
  if (options.help) {
    std::cout << usage(specs);
    return 0;
  }
  if (options.version) {
    std::cout << "hci-admission " << HCI_ADMISSION_VERSION << std::endl;
    return 0;
  }
  if (options.cert_dir.empty()) return fail(2, "--cert-dir is required (see --help)");
  setup_logging(options.log_format, options.log_level);

  std::unique_ptr<LiveClusterView> kube_api;
  std::unique_ptr<SelfManagedCertificates> self_managed;
  if (options.self_managed) {
    try {
      kube_api = open_kube_api(options.cluster);
      if (!kube_api) {
        return fail(2,
                    "--self-managed-certs needs the Kubernetes API: run in a cluster or give --kubeconfig");
      }
      SelfManagedCertsConfig config = options.self_managed_certs;
      config.cert_dir = options.cert_dir;
      config.request_timeout = options.cluster.read_timeout;
      self_managed = std::make_unique<SelfManagedCertificates>(config, *kube_api);
    } catch (const std::exception &e) {
      return fail(2, e.what());
    }
    // The first certificate before serving; the API may still be coming up.
    for (int attempt = 1;; ++attempt) {
      try {
        self_managed->reconcile();
        break;
      } catch (const std::exception &e) {
        if (attempt == 30) return fail(1, std::string("self-managed certificates: ") + e.what());
        LogLine("self-managed certificates: not ready yet, trying again")
            .field("attempt", attempt)
            .field("error", e.what())
            .warn();
        std::this_thread::sleep_for(std::chrono::seconds(2));
      }
    }
  }

  std::shared_ptr<const ServingCertificate> cert;
  try {
    cert = ServingCertificate::load(options.cert_dir);
  } catch (const TlsError &e) {
    return fail(1, e.what());
  }
  auto enabled = [&](const PolicySpec &spec) {
    return options.enabled_policies.empty() ||
           std::find(options.enabled_policies.begin(), options.enabled_policies.end(), spec.name) !=
               options.enabled_policies.end();
  };
  std::unique_ptr<ClusterView> cluster;
  if (std::any_of(specs.begin(), specs.end(),
                  [&](const PolicySpec &s) { return enabled(s) && s.reads_cluster; })) {
    try {
      cluster = open_cluster(options.cluster);
    } catch (const std::exception &e) {
      return fail(1, e.what());
    }
  }
  auto router = std::make_shared<AdmissionRouter>(options.cluster.read_timeout);
  router->set_log_objects(options.log_objects);
  register_process_metrics(metrics());
  std::vector<std::string> served;
  for (const auto &spec : specs) {
    if (!enabled(spec)) continue;
    if (spec.reads_cluster && !cluster && options.enabled_policies.empty()) {
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
      router->add(spec, spec.build(PolicyConfig(values, cluster.get())));
    } catch (const std::invalid_argument &e) {
      std::string hint = spec.reads_cluster && !cluster ? " (or leave it out with --policies)" : "";
      return fail(2, spec.name + ": " + e.what() + hint);
    }
    served.push_back(spec.path());
  }

  auto tls = std::make_shared<TlsContext>(cert);
  if (!options.client_ca_file.empty()) {
    try {
      tls->require_client_certificates(options.client_ca_file);
    } catch (const TlsError &e) {
      return fail(1, e.what());
    }
    router->require_client_certificates(options.client_allowed_names);
  }

  std::unique_ptr<HttpsServer> server;
  try {
    server = std::make_unique<HttpsServer>(
        options.server, tls, [router](const HttpRequestView &r) { return router->handle(r); },
        [router](std::string_view path) { return router->may_block(path); });
    server->bind();
  } catch (const std::exception &e) {
    return fail(1, e.what());
  }
  // Plain HTTP for scrapers that do not speak TLS to pods; /metrics only.
  std::unique_ptr<httplib::Server> metrics_server;
  std::thread metrics_thread;
  if (options.metrics_port > 0) {
    metrics_server = std::make_unique<httplib::Server>();
    // A scraper every few seconds needs one thread, not httplib's eight.
    metrics_server->new_task_queue = [] { return new httplib::ThreadPool(1); };
    metrics_server->Get("/metrics", [](const httplib::Request &, httplib::Response &res) {
      res.set_content(metrics().render(), "text/plain; version=0.0.4; charset=utf-8");
    });
    if (!metrics_server->bind_to_port(options.server.bind_address, options.metrics_port)) {
      return fail(1, "cannot listen on " + options.server.bind_address + ":" +
                         std::to_string(options.metrics_port) + " for --metrics-port");
    }
  }
  HttpsServer *srv = server.get();
  std::atomic<bool> draining{false};
  router->set_readiness([srv, tls, &draining]() -> std::string {
    if (draining) return "shutting down";
    if (!srv->listening()) return "not listening";
    auto c = tls->current();
    if (!c || !c->valid_at(std::chrono::system_clock::now())) return "no valid serving certificate";
    return "";
  });

  std::atomic<bool> signalled{false};
  std::thread signal_waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (!signalled.exchange(true)) {
      // Not ready at once, but still serving: kube-proxy and the API server
      // need a few seconds to stop sending here (the most reported webhook
      // outage: a pod that stops listening before its endpoint is gone).
      draining = true;
      LogLine("stopping: not ready, still serving")
          .field("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT")
          .field("delay_ms", static_cast<long long>(options.shutdown_delay.count()))
          .info();
      const auto secs = std::chrono::duration_cast<std::chrono::seconds>(options.shutdown_delay);
      timespec wait{static_cast<time_t>(secs.count()),
                    static_cast<long>((options.shutdown_delay - secs).count() * 1000000)};
      if (options.shutdown_delay.count() > 0 && sigtimedwait(&stop_signals, nullptr, &wait) > 0) {
        LogLine("second signal: stopping now").info();
      }
      LogLine("closing the listener; finishing requests in flight").info();
    }
    srv->stop();
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
  MetricsRegistry &m = metrics();
  m.gauge_function("hci_admission_certificate_expiry_timestamp_seconds",
                   "When the serving certificate in use expires, in seconds since the epoch.", [tls] {
                     auto c = tls->current();
                     return c ? std::chrono::duration<double>(c->not_after().time_since_epoch()).count()
                              : 0.0;
                   });
  // controller-runtime's certwatcher names; the first load counts as a read.
  m.counter_function("certwatcher_read_certificate_total", "Total number of certificate reads",
                     [&reloader] { return 1.0 + reloader.reloads() + reloader.errors(); });
  m.counter_function("certwatcher_read_certificate_errors_total", "Total number of certificate read errors",
                     [&reloader] { return static_cast<double>(reloader.errors()); });
  if (self_managed) {
    SelfManagedCertificates *sm = self_managed.get();
    m.counter_function("hci_admission_self_managed_cert_passes_total",
                       "Checks of the certificate Secret and caBundles that completed.",
                       [sm] { return static_cast<double>(sm->passes()); });
    m.counter_function(
        "hci_admission_self_managed_cert_failures_total",
        "Checks of the certificate Secret and caBundles that failed (API unreachable or refused).",
        [sm] { return static_cast<double>(sm->failures()); });
    m.counter_function("hci_admission_self_managed_cert_changes_total",
                       "Writes of the certificate Secret: issued or renewed certificates, CA switches.",
                       [sm] { return static_cast<double>(sm->renewals()); });
    self_managed->start();
  }
  if (metrics_server) metrics_thread = std::thread([&] { metrics_server->listen_after_bind(); });
  server->serve();
  if (metrics_server) {
    metrics_server->stop();
    metrics_thread.join();
  }
  if (self_managed) self_managed->stop();
  if (!signalled.exchange(true)) {
    // Stopped without a signal: wake the waiter so it can be joined.
    pthread_kill(signal_waiter.native_handle(), SIGTERM);
  }
  signal_waiter.join();
  LogLine("stopped").info();
  spdlog::shutdown();  // writes out what the async logger still holds
  return 0;
}
