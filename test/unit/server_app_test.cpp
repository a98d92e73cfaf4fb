// run_server in a process that goes on after it: the metric functions it
// registers read its certificate reloader, which dies when it returns, so
// they must leave the registry with it. Run twice, with /metrics rendered
// during, between and after the runs.
#include "hci_admission/app/server_app.hpp"
#include "hci_admission/app/cli.hpp"
#include "hci_admission/certs/cert_issuer.hpp"
#include "hci_admission/obs/logging.hpp"
#include "hci_admission/obs/metrics.hpp"
#include "registry.hpp"
#include "tls_fixture.hpp"

#include <catch2/catch.hpp>

#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <future>

using namespace hci_admission;
using namespace std::chrono_literals;

namespace {

// The signal that stops run_server here (the server takes SIGTERM in
// production; the test runner must not). Blocked in this thread, and so in
// every thread run_server starts; a thread from elsewhere that does not
// block it takes it with a handler that does nothing (stop() sends it
// again), instead of dying.
class StopSignal {
 public:
  StopSignal() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set_, &old_mask_);
    struct sigaction nothing {};
    nothing.sa_handler = [](int) {};
    sigaction(SIGUSR2, &nothing, &old_action_);
  }
  ~StopSignal() {
    drain();
    sigaction(SIGUSR2, &old_action_, nullptr);
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  StopSignal(const StopSignal &) = delete;
  StopSignal &operator=(const StopSignal &) = delete;
  const sigset_t &set() const { return set_; }
  // A signal sent again while the server was already stopping stays
  // pending; taken here, so that the next run does not stop at once.
  void drain() const {
    const timespec zero{0, 0};
    while (sigtimedwait(&set_, nullptr, &zero) > 0) {
    }
  }

 private:
  sigset_t set_{};
  sigset_t old_mask_{};
  struct sigaction old_action_ {};
};

bool has_series(const std::string &rendered, const std::string &series) {
  return rendered.find("\n" + series + " ") != std::string::npos;
}

// One run of the server on a thread of its own.
class ServerRun {
 public:
  ServerRun(const Options &options, const std::vector<PolicySpec> &specs, const StopSignal &stop)
      : stop_(stop), result_(std::async(std::launch::async, [&options, &specs, &stop] {
          return run_server(options, specs, stop.set());
        })) {}
  // Waits (up to 30 s) for the certificate metrics, registered just before
  // it serves; false if the run ended or they never came.
  bool wait_until_serving() {
    for (int i = 0; i < 600; ++i) {
      if (has_series(metrics().render(), "certwatcher_read_certificate_total")) return true;
      if (result_.wait_for(50ms) == std::future_status::ready) return false;
    }
    return false;
  }
  // Sends the stop signal until run_server returns; its exit code.
  int stop() {
    while (result_.wait_for(100ms) != std::future_status::ready) kill(getpid(), SIGUSR2);
    const int code = result_.get();
    stop_.drain();
    return code;
  }

 private:
  const StopSignal &stop_;
  std::future<int> result_;
};

}  // namespace

TEST_CASE("the metric functions of a server run leave the registry when it returns", "[app]") {
  setup_logging(LogFormat::Text, "off");
  test_support::TempDir certs;
  const auto now = std::chrono::system_clock::now();
  const PemPair ca = make_ca("test CA", 48h, now);
  const PemPair leaf = issue_serving_certificate(ca, {"localhost"}, 24h, now);
  test_support::write_pair(certs.path(), leaf.cert, leaf.key);
  const auto specs = webhooks::builtin_policies();
  // A policy that reads no cluster; no delay after the stop signal.
  const Options options =
      parse_options({"--cert-dir", certs.path(), "--bind", "127.0.0.1", "--port", "0", "--threads", "1",
                     "--shutdown-delay", "0s", "--policies", "kubevirt-infra-placement"},
                    specs);
  const std::vector<std::string> per_run = {"certwatcher_read_certificate_total",
                                            "certwatcher_read_certificate_errors_total",
                                            "hci_admission_certificate_expiry_timestamp_seconds"};
  StopSignal stop;
  for (int run = 1; run <= 2; ++run) {
    INFO("run " << run);
    ServerRun server(options, specs, stop);
    REQUIRE(server.wait_until_serving());
    const std::string during = metrics().render();
    for (const auto &series : per_run) CHECK(has_series(during, series));
    // This run's reloader: one read, the first load (not the last run's).
    CHECK_THAT(during, Catch::Contains("\ncertwatcher_read_certificate_total 1\n"));
    CHECK(server.stop() == 0);
    // Before issue 24 these stayed, each calling into the dead run's
    // reloader at every scrape (a use after free under ASan).
    const std::string after = metrics().render();
    for (const auto &series : per_run) {
      CHECK_FALSE(has_series(after, series));
      CHECK(after.find("# HELP " + series + " ") == std::string::npos);
    }
    CHECK(has_series(after, "process_start_time_seconds"));  // the process's own stay
  }
}

TEST_CASE("metric functions registered for a scope are removed with it, and only they", "[app]") {
  MetricsRegistry registry;
  registry.counter("hits_total", "Hits.").inc(3);
  registry.gauge_function("shared", "Shared.", [] { return 7.0; }, {{"owner", "process"}});
  {
    double value = 1.5;  // what the functions read dies with the scope
    ScopedMetricFunctions scoped(registry);
    scoped.counter("scoped_total", "Read from the scope.", [&value] { return value; });
    scoped.gauge("shared", "Shared.", [&value] { return value * 2; }, {{"owner", "scope"}});
    const std::string during = registry.render();
    CHECK_THAT(during, Catch::Contains("\nscoped_total 1.5\n"));
    CHECK_THAT(during, Catch::Contains("shared{owner=\"scope\"} 3\n"));
    CHECK_THAT(during, Catch::Contains("shared{owner=\"process\"} 7\n"));
  }
  const std::string after = registry.render();
  CHECK_THAT(after, !Catch::Contains("scoped_total"));  // its HELP and TYPE too
  CHECK_THAT(after, !Catch::Contains("owner=\"scope\""));
  CHECK_THAT(after, Catch::Contains("shared{owner=\"process\"} 7\n"));
  CHECK_THAT(after, Catch::Contains("hits_total 3\n"));
  registry.remove_function("no_such_metric");  // nothing to remove: no effect
  registry.remove_function("hits_total");      // a counter, not a function: stays
  CHECK_THAT(registry.render(), Catch::Contains("hits_total 3\n"));
}
