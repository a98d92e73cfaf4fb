// Routes HTTP requests to policies and speaks AdmissionReview. Nothing in
// here knows about any particular policy.
#pragma once

#include "hci_admission/admission/policy.hpp"
#include "hci_admission/admission/review_codec.hpp"
#include "hci_admission/net/https_server.hpp"
#include "hci_admission/net/tls.hpp"
#include "hci_admission/obs/metrics.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hci_admission {

// Maps paths to policies and turns one HTTP request into one HTTP reply.
// Pure apart from logging, so it is tested without sockets.
class AdmissionRouter {
 public:
  AdmissionRouter() = default;
  // The longest a policy may take to read the cluster; kube-apiserver's
  // ?timeout= on the request shortens it.
  explicit AdmissionRouter(std::chrono::milliseconds cluster_read_timeout)
      : cluster_read_timeout_(cluster_read_timeout) {}

  void add(const PolicySpec &spec, std::unique_ptr<Policy> policy);

  // Returns "" when ready, otherwise why not.
  void set_readiness(std::function<std::string()> check) { readiness_ = std::move(check); }
  // Log what each policy was given (the fields it asked for; Secret data
  // never). For debugging: objects may hold what logs should not.
  void set_log_objects(bool on) { log_objects_ = on; }
  // Mutual TLS: every path but /healthz and /readyz needs a verified client
  // certificate (401 without), and, when `allowed_names` is not empty, one
  // whose CN or a DNS SAN is listed (403 otherwise).
  void require_client_certificates(std::vector<std::string> allowed_names) {
    client_auth_ = true;
    allowed_client_names_ = std::move(allowed_names);
  }

  // Never blocks: a review that may read the cluster is returned as
  // HttpReply::finish_on_worker.
  HttpReply handle(const HttpRequestView &request) const;

  std::vector<std::string> paths() const;

 private:
  // The series a route updates on every request, held so that counting
  // takes no lock.
  struct RouteMetrics {
    Counter *ok = nullptr;  // controller_runtime_webhook_requests_total, code 200
    Gauge *in_flight = nullptr;
    Histogram *latency = nullptr;
    // hci_admission_decisions_total (denials are counted by their code)
    Counter *allowed = nullptr, *patched = nullptr;
  };
  struct Route {
    PolicySpec spec;  // name, type, rules (which screen requests), reads_cluster (may block)
    std::string path;
    std::unique_ptr<Policy> policy;
    ObjectFields fields;
    RouteMetrics metrics;
  };
  HttpReply admit(const Route &route, const HttpRequestView &request) const;
  // The policy's decision on a decoded review (or the screen's, when the
  // rules already answered it), encoded, counted and logged.
  HttpReply decide(const Route &route, DecodedReview &review, std::chrono::steady_clock::time_point started,
                   std::optional<Decision> screened) const;
  // Counts and logs an answer that is not a decision (400, 415, 500...).
  HttpReply failed(const Route &route, int status, const std::string &message, const std::string &uid) const;

  std::chrono::milliseconds cluster_read_timeout_{10000};
  // Looked up by the request's path as it is: hashing it took a copy
  // (an allocation for any path over 15 bytes) every review.
  std::map<std::string, Route, std::less<>> routes_;
  std::function<std::string()> readiness_;
  bool log_objects_ = false;
  bool client_auth_ = false;
  std::vector<std::string> allowed_client_names_;
};

}  // namespace hci_admission
