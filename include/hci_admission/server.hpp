// Routes HTTP requests to policies and speaks AdmissionReview. Nothing in
// here knows about any particular policy.
#pragma once

#include "hci_admission/admission.hpp"
#include "hci_admission/https_server.hpp"
#include "hci_admission/review_codec.hpp"
#include "hci_admission/tls.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
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

  HttpReply handle(const HttpRequestView &request) const;
  // Whether the policy at `path` may block (it reads the cluster).
  bool may_block(std::string_view path) const;

  std::vector<std::string> paths() const;

 private:
  struct Route {
    std::string name;
    PolicyType type;
    std::unique_ptr<Policy> policy;
    ObjectFields fields;
    bool may_block;
  };
  HttpReply admit(const Route &route, std::string_view body, std::string_view query) const;

  std::chrono::milliseconds cluster_read_timeout_{10000};
  std::unordered_map<std::string, Route> routes_;
  std::function<std::string()> readiness_;
};

}  // namespace hci_admission
