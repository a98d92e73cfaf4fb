// Reading the Kubernetes API the way kubectl does: in-cluster service
// account or a kubeconfig file; TLS verified; LIST with pagination.
#pragma once

#include "hci_admission/kube/cluster_view.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace httplib {
class SSLClient;
}

namespace hci_admission {

// Where the API is and how to prove who we are.
struct KubeCredentials {
  std::string server;           // https://host:port
  std::string ca_pem;           // trusted CA certificates; empty: the system's
  std::string token;            // bearer token, or
  std::string token_file;       // a file holding it, re-read when it changes
  std::string client_cert_pem;  // client certificate and key, or neither
  std::string client_key_pem;
  std::string source;  // "kubeconfig F, context C" or "in-cluster service account"

  // Throws std::runtime_error naming the file and what is missing.
  static KubeCredentials from_kubeconfig(const std::string &path, const std::string &context = "");
  // The files merged as kubectl merges $KUBECONFIG (merge_kubeconfigs);
  // each must exist. Errors name them all, joined by ':'.
  static KubeCredentials from_kubeconfigs(const std::vector<std::string> &paths,
                                          const std::string &context = "");
  // KUBERNETES_SERVICE_HOST/PORT and the service account files in `sa_dir`.
  static KubeCredentials in_cluster(
      const std::string &sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount");
};

// One page of a LIST answer: hands its items, with only `mask`'s fields,
// to `item` one by one. `on_continue` gets the continue token ("" on the
// last page) before the items are taken apart, so the next page can be
// fetched meanwhile. Throws ClusterReadError("<what>: ...") for anything
// that is not a list. `reader`, when given, is the parser kept for the
// list's pages one after another.
void parse_list_page(std::string_view body, const FieldMask &mask, const std::string &what,
                     const std::function<void(Json &&)> &item,
                     const std::function<void(const std::string &)> &on_continue,
                     JsonReader *reader = nullptr);

// One API answer: the HTTP status and the body as sent.
struct ApiReply {
  int status = 0;
  std::string body;
  // "HTTP 403: <the Status message>", for errors.
  std::string failure() const;
};

// Single-object requests for the server's upkeep of its own objects (its
// certificate Secret, its webhook configurations). Paths are the API's own
// ("/api/v1/namespaces/N/secrets/S").
class KubeApi {
 public:
  virtual ~KubeApi() = default;
  // GET, POST, PUT or PATCH; `content_type` describes `body`. Throws
  // ClusterReadError when no answer comes (unreachable, TLS, timeout).
  virtual ApiReply request(const std::string &method, const std::string &path, const std::string &body,
                           const std::string &content_type, Deadline deadline) const = 0;
  virtual std::string describe() const = 0;
};

// The Kubernetes API over HTTPS: lists for policies, single requests for
// upkeep.
class LiveClusterView : public ClusterView, public KubeApi {
 public:
  explicit LiveClusterView(KubeCredentials credentials, size_t page_size = 500);
  ~LiveClusterView() override;

  std::vector<Json> list(const ResourceRef &resource, const std::vector<std::string> &fields,
                         Deadline deadline) const override;
  void list_each(const ResourceRef &resource, const std::vector<std::string> &fields, Deadline deadline,
                 const ListSink &sink) const override;
  ApiReply request(const std::string &method, const std::string &path, const std::string &body,
                   const std::string &content_type, Deadline deadline) const override;
  std::string describe() const override;

 private:
  std::unique_ptr<httplib::SSLClient> acquire() const;
  void release(std::unique_ptr<httplib::SSLClient> client) const;
  std::string bearer_token() const;

  KubeCredentials credentials_;
  std::string host_;
  int port_ = 443;
  std::string api_host_;  // host:port, the metrics' host label
  size_t page_size_;
  mutable std::mutex mutex_;
  mutable std::vector<std::unique_ptr<httplib::SSLClient>> idle_;  // keep-alive connections
  mutable std::string token_;
  mutable long long token_mtime_ = -1;
};

}  // namespace hci_admission
