// The HTTPS admission server: routes requests to policies and speaks
// AdmissionReview. Nothing in here knows about any particular policy.
#pragma once

#include "hci_admission/admission.hpp"
#include "hci_admission/review_codec.hpp"
#include "hci_admission/tls.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace httplib {
class SSLServer;
}

namespace hci_admission {

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string allow;  // the Allow header of a 405
};

// What the router needs of an HTTP request, after the transport read it.
struct HttpRequestView {
  std::string_view method;
  std::string_view path;
  std::string_view content_type;
  std::string_view body;
  bool body_too_large = false;
};

// Maps paths to policies and turns one HTTP request into one HTTP reply.
// Pure apart from logging, so it is tested without sockets.
class AdmissionRouter {
 public:
  explicit AdmissionRouter(size_t max_body_bytes) : max_body_bytes_(max_body_bytes) {}

  void add(const PolicySpec &spec, std::unique_ptr<Policy> policy);

  // Returns "" when ready, otherwise why not.
  void set_readiness(std::function<std::string()> check) { readiness_ = std::move(check); }

  HttpReply handle(const HttpRequestView &request) const;

  size_t max_body_bytes() const { return max_body_bytes_; }
  std::vector<std::string> paths() const;

 private:
  struct Route {
    std::string name;
    PolicyType type;
    std::unique_ptr<Policy> policy;
    ObjectFields fields;
  };
  HttpReply admit(const Route &route, std::string_view body) const;

  size_t max_body_bytes_;
  std::unordered_map<std::string, Route> routes_;
  std::function<std::string()> readiness_;
};

struct ServerConfig {
  std::string bind_address = "0.0.0.0";
  int port = 9443;
  // Connections served at once; each holds one worker thread while open.
  size_t max_connections = 512;
  // Requests on one connection before it is closed, so that clients
  // reconnect and spread over replicas after a scale-up.
  size_t max_requests_per_connection = 1000;
  // Longer than the 90 s kube-apiserver keeps an idle connection, so that
  // the server never closes one the client is about to reuse.
  std::chrono::seconds idle_timeout{120};
  std::chrono::seconds read_timeout{10};
  std::chrono::seconds write_timeout{10};
};

class AdmissionServer {
 public:
  AdmissionServer(ServerConfig config, std::shared_ptr<TlsContext> tls,
                  std::shared_ptr<const AdmissionRouter> router);
  ~AdmissionServer();

  // Binds and listens; throws std::runtime_error naming the address and the
  // reason when it cannot.
  void bind();
  // Serves until stop(); returns once in-flight requests are answered.
  void serve();
  void stop();
  bool listening() const { return listening_; }
  int port() const { return bound_port_; }

 private:
  ServerConfig config_;
  std::shared_ptr<TlsContext> tls_;
  std::shared_ptr<const AdmissionRouter> router_;
  std::unique_ptr<httplib::SSLServer> http_;
  std::atomic<bool> listening_{false};
  int listen_fd_ = -1;
  int bound_port_ = 0;
};

}  // namespace hci_admission
