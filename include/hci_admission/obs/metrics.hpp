// Prometheus metrics in the text exposition format (0.0.4), without a
// client library: counters, gauges and histograms with labels, and gauges
// computed when scraped. Series are created once and then updated with
// atomics only, so the request path takes no lock once it holds them.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace hci_admission {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double d) {
    double cur = value_.load(std::memory_order_relaxed);
    while (!value_.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
    }
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);
  // Cumulative counts per bucket (+Inf last), the sum and the count.
  std::vector<uint64_t> cumulative() const;
  double sum() const { return static_cast<double>(sum_nanos_.load(std::memory_order_relaxed)) / 1e9; }
  const std::vector<double> &upper_bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; +Inf last
  std::atomic<uint64_t> sum_nanos_{0};               // observations are seconds; kept in ns
};

// Seconds: 100 µs to 10 s. controller-runtime uses Prometheus' default
// buckets (5 ms and up); a webhook answering in 50 µs needs finer ones.
std::vector<double> latency_buckets();

class MetricsRegistry {
 public:
  // The series of `name` with `labels`, created on first use; the
  // reference stays valid for the registry's life. The first call for a
  // name fixes its help text.
  Counter &counter(const std::string &name, const std::string &help, const Labels &labels = {});
  Gauge &gauge(const std::string &name, const std::string &help, const Labels &labels = {});
  Histogram &histogram(const std::string &name, const std::string &help, const Labels &labels = {},
                       const std::vector<double> &buckets = latency_buckets());
  // A gauge whose value is computed at each scrape.
  void gauge_function(const std::string &name, const std::string &help, std::function<double()> value,
                      const Labels &labels = {});
  // The same for a value that only grows (rendered as a counter).
  void counter_function(const std::string &name, const std::string &help, std::function<double()> value,
                        const Labels &labels = {});
  // Removes what gauge_function or counter_function registered for `name`
  // with `labels` (nothing when there is none), and the family once it has
  // no series left. When it returns, no scrape is calling that function
  // and none will: what it points at may go.
  void remove_function(const std::string &name, const Labels &labels = {});

  std::string render() const;

 private:
  struct Family {
    std::string help;
    const char *type;
    std::map<std::string, std::unique_ptr<Counter>> counters;  // by rendered labels
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
    std::map<std::string, std::function<double()>> functions;
  };
  Family &family(const std::string &name, const std::string &help, const char *type);

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
};

// Computed series for something that lives shorter than the registry (a
// server run, whose certificate reloader the functions read): registered
// through this and removed when it is destroyed, so that a scrape after
// that never calls into what is gone. Declare it after what its functions
// point at.
class ScopedMetricFunctions {
 public:
  explicit ScopedMetricFunctions(MetricsRegistry &registry) : registry_(registry) {}
  ~ScopedMetricFunctions();
  ScopedMetricFunctions(const ScopedMetricFunctions &) = delete;
  ScopedMetricFunctions &operator=(const ScopedMetricFunctions &) = delete;

  // As MetricsRegistry::gauge_function and counter_function.
  void gauge(const std::string &name, const std::string &help, std::function<double()> value,
             const Labels &labels = {});
  void counter(const std::string &name, const std::string &help, std::function<double()> value,
               const Labels &labels = {});

 private:
  MetricsRegistry &registry_;
  std::vector<std::pair<std::string, Labels>> registered_;
};

// The process-wide registry /metrics shows (as Prometheus clients'
// default registerer). Policies never touch it: the server core counts
// around them.
MetricsRegistry &metrics();

// process_* gauges (memory, CPU, file descriptors, start time) from /proc.
void register_process_metrics(MetricsRegistry &registry);

}  // namespace hci_admission
