#include "hci_admission/obs/metrics.hpp"

#include <unistd.h>

#include <sys/resource.h>

#include <dirent.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace hci_admission {
namespace {

std::string escape_label(const std::string &v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string render_labels(const Labels &labels) {
  std::string out;
  for (const auto &[k, v] : labels) out += (out.empty() ? "" : ",") + k + "=\"" + escape_label(v) + "\"";
  return out;
}

std::string format_value(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

std::string series(const std::string &name, const std::string &labels, const std::string &extra = "") {
  std::string all = labels;
  if (!extra.empty()) all += (all.empty() ? "" : ",") + extra;
  return all.empty() ? name : name + "{" + all + "}";
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  std::sort(bounds_.begin(), bounds_.end());
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::observe(double v) {
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_nanos_.fetch_add(static_cast<uint64_t>(std::max(0.0, v) * 1e9), std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::cumulative() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

std::vector<double> latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

MetricsRegistry::Family &MetricsRegistry::family(const std::string &name, const std::string &help,
                                                 const char *type) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.help = help;
    it->second.type = type;
  }
  return it->second;
}

Counter &MetricsRegistry::counter(const std::string &name, const std::string &help, const Labels &labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto &slot = family(name, help, "counter").counters[render_labels(labels)];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge &MetricsRegistry::gauge(const std::string &name, const std::string &help, const Labels &labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto &slot = family(name, help, "gauge").gauges[render_labels(labels)];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram &MetricsRegistry::histogram(const std::string &name, const std::string &help, const Labels &labels,
                                      const std::vector<double> &buckets) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto &slot = family(name, help, "histogram").histograms[render_labels(labels)];
  if (!slot) slot = std::make_unique<Histogram>(buckets);
  return *slot;
}

void MetricsRegistry::gauge_function(const std::string &name, const std::string &help,
                                     std::function<double()> value, const Labels &labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  family(name, help, "gauge").functions[render_labels(labels)] = std::move(value);
}

void MetricsRegistry::counter_function(const std::string &name, const std::string &help,
                                       std::function<double()> value, const Labels &labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  family(name, help, "counter").functions[render_labels(labels)] = std::move(value);
}

void MetricsRegistry::remove_function(const std::string &name, const Labels &labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = families_.find(name);
  if (it == families_.end()) return;
  Family &f = it->second;
  f.functions.erase(render_labels(labels));
  if (f.functions.empty() && f.counters.empty() && f.gauges.empty() && f.histograms.empty()) {
    families_.erase(it);
  }
}

ScopedMetricFunctions::~ScopedMetricFunctions() {
  for (const auto &[name, labels] : registered_) registry_.remove_function(name, labels);
}

void ScopedMetricFunctions::gauge(const std::string &name, const std::string &help,
                                  std::function<double()> value, const Labels &labels) {
  registry_.gauge_function(name, help, std::move(value), labels);
  registered_.emplace_back(name, labels);
}

void ScopedMetricFunctions::counter(const std::string &name, const std::string &help,
                                    std::function<double()> value, const Labels &labels) {
  registry_.counter_function(name, help, std::move(value), labels);
  registered_.emplace_back(name, labels);
}

std::string MetricsRegistry::render() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream out;
  for (const auto &[name, f] : families_) {
    out << "# HELP " << name << " " << f.help << "\n# TYPE " << name << " " << f.type << "\n";
    for (const auto &[labels, c] : f.counters) out << series(name, labels) << " " << c->value() << "\n";
    for (const auto &[labels, g] : f.gauges)
      out << series(name, labels) << " " << format_value(g->value()) << "\n";
    for (const auto &[labels, fn] : f.functions)
      out << series(name, labels) << " " << format_value(fn()) << "\n";
    for (const auto &[labels, h] : f.histograms) {
      const auto counts = h->cumulative();
      for (size_t i = 0; i < counts.size(); ++i) {
        const std::string le =
            i < h->upper_bounds().size() ? format_value(h->upper_bounds()[i]) : std::string("+Inf");
        out << series(name + "_bucket", labels, "le=\"" + le + "\"") << " " << counts[i] << "\n";
      }
      out << series(name + "_sum", labels) << " " << format_value(h->sum()) << "\n";
      out << series(name + "_count", labels) << " " << counts.back() << "\n";
    }
  }
  return out.str();
}

MetricsRegistry &metrics() {
  static MetricsRegistry registry;
  return registry;
}

void register_process_metrics(MetricsRegistry &r) {
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  auto statm = [page](int field) {
    std::ifstream in("/proc/self/statm");
    double v[2] = {0, 0};
    in >> v[0] >> v[1];
    return v[field] * page;
  };
  r.gauge_function("process_resident_memory_bytes", "Resident memory size in bytes.",
                   [statm] { return statm(1); });
  r.gauge_function("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                   [statm] { return statm(0); });
  r.counter_function("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  });
  r.gauge_function("process_open_fds", "Number of open file descriptors.", [] {
    double n = 0;
    if (DIR *d = opendir("/proc/self/fd")) {
      while (readdir(d) != nullptr) ++n;
      closedir(d);
      n -= 3;  // ".", ".." and the directory itself
    }
    return n;
  });
  r.gauge_function("process_max_fds", "Maximum number of open file descriptors.", [] {
    rlimit l{};
    getrlimit(RLIMIT_NOFILE, &l);
    return static_cast<double>(l.rlim_cur);
  });
  const double start =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  r.gauge_function("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                   [start] { return start; });
}

}  // namespace hci_admission
