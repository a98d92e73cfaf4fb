#include "hci_admission/kube/kube_client.hpp"

#include <simdjson.h>

#include "hci_admission/common/base64.hpp"
#include "hci_admission/common/files.hpp"
#include "hci_admission/common/openssl.hpp"
#include "hci_admission/kube/kubeconfig.hpp"
#include "hci_admission/obs/logging.hpp"
#include "hci_admission/obs/metrics.hpp"

#include <httplib.h>

#include <sys/stat.h>

#include <cctype>
#include <cstdlib>
#include <future>
#include <optional>
#include <stdexcept>

namespace hci_admission {
namespace {

// --- helpers for credentials

std::string member(const Json &obj, const char *key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

const Json *named(const Json &doc, const char *list, const std::string &name, const char *inner) {
  auto it = doc.find(list);
  if (it == doc.end() || !it->is_array()) return nullptr;
  for (const auto &entry : *it) {
    if (member(entry, "name") == name && entry.contains(inner)) return &entry[inner];
  }
  return nullptr;
}

// One LIST page; a larger answer is refused rather than read into memory.
constexpr uint64_t kMaxPageBytes = 256ull << 20;

std::string percent_encode(const std::string &s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string transport_error(httplib::Error e, long verify_result) {
  if (e == httplib::Error::SSLServerVerification) {
    return std::string("server certificate not trusted (") + X509_verify_cert_error_string(verify_result) +
           ")";
  }
  return httplib::to_string(e);
}

httplib::Headers api_headers(const std::string &token) {
  httplib::Headers h = {{"Accept", "application/json"},
                        {"User-Agent", "hci-admission/" HCI_ADMISSION_VERSION}};
  if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
  return h;
}

// Connect, read and write timeouts from what is left before `deadline`;
// throws ClusterReadError when nothing is left.
std::chrono::milliseconds set_deadline(httplib::SSLClient &client, Deadline deadline,
                                       const std::string &what) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) throw ClusterReadError(what + ": timed out");
  client.set_connection_timeout(left.count() / 1000, (left.count() % 1000) * 1000);
  client.set_read_timeout(left.count() / 1000, (left.count() % 1000) * 1000);
  client.set_write_timeout(left.count() / 1000, (left.count() % 1000) * 1000);
  return left;
}

// client-go's metric names, so that API-client dashboards work.
void record_api_call(const std::string &host, const char *method, int code,
                     std::chrono::steady_clock::time_point started) {
  MetricsRegistry &m = metrics();
  m.counter("rest_client_requests_total",
            "Number of HTTP requests, partitioned by status code, method, and host.",
            {{"code", code > 0 ? std::to_string(code) : "<error>"}, {"host", host}, {"method", method}})
      .inc();
  m.histogram("rest_client_request_duration_seconds",
              "Request latency in seconds. Broken down by verb, and host.",
              {{"host", host}, {"verb", method}})
      .observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

// "message" of a metav1.Status body, if it is one.
std::string status_message(const std::string &body) {
  Json s = Json::parse(body, nullptr, false);
  if (s.is_object() && s.contains("message") && s["message"].is_string())
    return s["message"].get<std::string>();
  return body.size() > 200 ? body.substr(0, 200) + "..." : body;
}

}  // namespace

void parse_list_page(std::string_view body, const FieldMask &mask, const std::string &what,
                     const std::function<void(Json &&)> &item,
                     const std::function<void(const std::string &)> &on_continue, JsonReader *reader) {
  namespace dom = simdjson::dom;
  const auto parsed = [&] {
    try {
      return reader != nullptr ? std::make_unique<ParsedJson>(body, *reader)
                               : std::make_unique<ParsedJson>(body);
    } catch (const JsonSyntaxError &e) {
      throw ClusterReadError(what + ": the answer is not JSON (" + e.what() + ")");
    } catch (const JsonTooLarge &e) {
      throw ClusterReadError(what + ": the answer cannot be read (" + e.what() + ")");
    }
  }();
  const dom::element doc = parsed->root();
  if (!doc.is_object()) throw ClusterReadError(what + ": the answer is not a list");
  std::string next;
  std::optional<dom::array> page_items;
  bool empty_list = false;
  for (const dom::key_value_pair member : dom::object(doc.get_object().value_unsafe())) {
    const dom::element v = member.value;
    if (member.key == "items" && v.is_array()) {
      page_items = v.get_array().value_unsafe();
    } else if (member.key == "items" && v.is_null()) {
      empty_list = true;  // as some servers write an empty list
    } else if (member.key == "metadata" && v.is_object()) {
      for (const dom::key_value_pair m : dom::object(v.get_object().value_unsafe())) {
        if (m.key == "continue" && m.value.is_string())
          next = std::string(m.value.get_string().value_unsafe());
      }
    }
  }
  if (!page_items && !empty_list) throw ClusterReadError(what + ": the answer is not a list (no items)");
  on_continue(next);
  try {
    if (page_items) {
      for (const dom::element v : *page_items) item(mask.extract(v));
    }
  } catch (const std::exception &e) {  // the sink's, or no memory: never a bare exception to the policy
    throw ClusterReadError(what + ": an item cannot be read (" + e.what() + ")");
  }
}

std::string ApiReply::failure() const {
  return "HTTP " + std::to_string(status) + ": " + status_message(body);
}

KubeCredentials KubeCredentials::from_kubeconfig(const std::string &path, const std::string &context) {
  return from_kubeconfigs({path}, context);
}

KubeCredentials KubeCredentials::from_kubeconfigs(const std::vector<std::string> &paths,
                                                  const std::string &context) {
  std::vector<Json> configs;
  std::string path;  // for messages: "a:b", as $KUBECONFIG lists them
  for (const auto &p : paths) {
    configs.push_back(read_kubeconfig_file(p));  // its relative paths made relative to its folder
    path += (path.empty() ? "" : ":") + p;
  }
  const Json doc = merge_kubeconfigs(configs);
  const std::string ctx_name = context.empty() ? member(doc, "current-context") : context;
  if (ctx_name.empty()) throw std::runtime_error("kubeconfig " + path + " has no current-context");
  const Json *ctx = named(doc, "contexts", ctx_name, "context");
  if (ctx == nullptr) throw std::runtime_error("kubeconfig " + path + " has no context \"" + ctx_name + "\"");
  const Json *cluster = named(doc, "clusters", member(*ctx, "cluster"), "cluster");
  if (cluster == nullptr) {
    throw std::runtime_error("kubeconfig " + path + ": context \"" + ctx_name + "\" names no known cluster");
  }
  KubeCredentials c;
  c.source = "kubeconfig " + path + ", context " + ctx_name;
  c.server = member(*cluster, "server");
  if (c.server.rfind("https://", 0) != 0) {
    throw std::runtime_error("kubeconfig " + path + ": cluster server \"" + c.server +
                             "\" is not an https:// URL");
  }
  if (member(*cluster, "insecure-skip-tls-verify") == "true") {
    throw std::runtime_error("kubeconfig " + path +
                             ": insecure-skip-tls-verify is not supported; give the cluster's CA");
  }
  try {
    if (!member(*cluster, "certificate-authority-data").empty()) {
      c.ca_pem = base64_decode(member(*cluster, "certificate-authority-data"));
    } else if (!member(*cluster, "certificate-authority").empty()) {
      c.ca_pem = read_file(member(*cluster, "certificate-authority"), "certificate authority");
    }
    const Json *user = named(doc, "users", member(*ctx, "user"), "user");
    if (user != nullptr) {
      if (user->contains("exec") || user->contains("auth-provider")) {
        throw std::runtime_error(
            "exec and auth-provider credentials are not supported; use a token or a client certificate");
      }
      c.token = member(*user, "token");
      if (!member(*user, "tokenFile").empty()) c.token_file = member(*user, "tokenFile");
      if (!member(*user, "client-certificate-data").empty()) {
        c.client_cert_pem = base64_decode(member(*user, "client-certificate-data"));
      } else if (!member(*user, "client-certificate").empty()) {
        c.client_cert_pem = read_file(member(*user, "client-certificate"), "client certificate");
      }
      if (!member(*user, "client-key-data").empty()) {
        c.client_key_pem = base64_decode(member(*user, "client-key-data"));
      } else if (!member(*user, "client-key").empty()) {
        c.client_key_pem = read_file(member(*user, "client-key"), "client key");
      }
    }
  } catch (const std::runtime_error &e) {
    throw std::runtime_error("kubeconfig " + path + ": " + e.what());
  }
  if (c.client_cert_pem.empty() != c.client_key_pem.empty()) {
    throw std::runtime_error("kubeconfig " + path +
                             ": a client certificate needs its key and the key its certificate");
  }
  return c;
}

KubeCredentials KubeCredentials::in_cluster(const std::string &sa_dir) {
  const char *host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char *port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr)
    throw std::runtime_error("not running in a cluster (no KUBERNETES_SERVICE_HOST)");
  KubeCredentials c;
  const std::string h = host;
  c.server = "https://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + port;
  c.ca_pem = read_file(sa_dir + "/ca.crt", "service account CA");
  c.token_file = sa_dir + "/token";
  read_file(c.token_file, "service account token");
  c.source = "in-cluster service account";
  return c;
}

LiveClusterView::LiveClusterView(KubeCredentials credentials, size_t page_size)
    : credentials_(std::move(credentials)), page_size_(page_size) {
  std::string hostport = credentials_.server.substr(8);
  hostport = hostport.substr(0, hostport.find('/'));
  const size_t colon = hostport.rfind(':');
  if (!hostport.empty() && hostport.front() == '[') {  // [::1]:6443
    const size_t close = hostport.find(']');
    host_ = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size() && hostport[close + 1] == ':')
      port_ = std::atoi(hostport.c_str() + close + 2);
  } else if (colon != std::string::npos) {
    host_ = hostport.substr(0, colon);
    port_ = std::atoi(hostport.c_str() + colon + 1);
  } else {
    host_ = hostport;
  }
  if (host_.empty() || port_ <= 0 || port_ > 65535) {
    throw std::runtime_error("cannot read server address \"" + credentials_.server + "\"");
  }
  api_host_ = hostport;
}

LiveClusterView::~LiveClusterView() = default;

std::string LiveClusterView::describe() const {
  return "the Kubernetes API at " + credentials_.server + " (" + credentials_.source + ")";
}

std::string LiveClusterView::bearer_token() const {
  if (credentials_.token_file.empty()) return credentials_.token;
  // Bound service account tokens rotate: read the file again when it changes.
  struct stat st {};
  std::lock_guard<std::mutex> lock(mutex_);
  if (stat(credentials_.token_file.c_str(), &st) == 0 &&
      static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec != token_mtime_) {
    token_ = read_file_if_present(credentials_.token_file).value_or("");
    while (!token_.empty() && std::isspace(static_cast<unsigned char>(token_.back()))) token_.pop_back();
    token_mtime_ = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  }
  return token_;
}

std::unique_ptr<httplib::SSLClient> LiveClusterView::acquire() const {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  std::unique_ptr<httplib::SSLClient> client;
  if (!credentials_.client_cert_pem.empty()) {
    const X509Ptr cert = read_pem_certificate(credentials_.client_cert_pem);
    const PrivateKeyPtr key = read_pem_private_key(credentials_.client_key_pem);
    if (!cert || !key) throw ClusterReadError("client certificate or key is not PEM");
    client = std::make_unique<httplib::SSLClient>(host_, port_, cert.get(), key.get());  // copies both
  } else {
    client = std::make_unique<httplib::SSLClient>(host_, port_);
  }
  if (!client->is_valid()) throw ClusterReadError("cannot set up TLS to " + credentials_.server);
  if (!credentials_.ca_pem.empty()) {
    X509StorePtr store(X509_STORE_new());
    int added = 0;
    for (const auto &ca : read_pem_certificates(credentials_.ca_pem))
      added += X509_STORE_add_cert(store.get(), ca.get());
    if (added == 0) throw ClusterReadError("the cluster CA holds no PEM certificate");
    client->set_ca_cert_store(store.release());  // owned by the client's SSL_CTX from here
  }
  client->enable_server_certificate_verification(true);
  client->set_keep_alive(true);
  return client;
}

void LiveClusterView::release(std::unique_ptr<httplib::SSLClient> client) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (idle_.size() < 8) idle_.push_back(std::move(client));
}

std::vector<Json> LiveClusterView::list(const ResourceRef &r, const std::vector<std::string> &fields,
                                        Deadline deadline) const {
  std::vector<Json> items;
  list_each(r, fields, deadline,
            {[&](Json &&item) { items.push_back(std::move(item)); }, [&] { items.clear(); }});
  return items;
}

void LiveClusterView::list_each(const ResourceRef &r, const std::vector<std::string> &fields,
                                Deadline deadline, const ListSink &sink) const {
  const FieldMask mask = FieldMask::of(fields);
  std::string base = r.group.empty() ? "/api/" + r.version : "/apis/" + r.group + "/" + r.version;
  if (!r.namespace_name.empty()) base += "/namespaces/" + r.namespace_name;
  base += "/" + r.resource;
  const std::string what = "list " + r.describe();

  auto client = acquire();
  const httplib::Headers headers = api_headers(bearer_token());

  // One GET of one page; throws ClusterReadError for transport failures.
  auto fetch = [&](const std::string &continue_token) {
    const auto left = set_deadline(*client, deadline, what);
    std::string path = base + "?limit=" + std::to_string(page_size_);
    // The server's own timeout too, so that it gives up when we do.
    path += "&timeoutSeconds=" + std::to_string(std::max<long long>(1, left.count() / 1000));
    if (!r.label_selector.empty()) path += "&labelSelector=" + percent_encode(r.label_selector);
    if (!continue_token.empty()) path += "&continue=" + percent_encode(continue_token);
    // Into a buffer sized once from Content-Length: growing a megabyte
    // page 4 KB at a time was a tenth of the guard's time (malloc churn).
    ApiReply page;
    const auto started = std::chrono::steady_clock::now();
    auto res = client->Get(
        path, headers,
        [&](const httplib::Response &r) {
          if (r.has_header("Content-Length")) {
            page.body.reserve(
                std::min<uint64_t>(r.get_header_value<uint64_t>("Content-Length"), kMaxPageBytes));
          }
          return true;
        },
        [&](const char *data, size_t n) {
          page.body.append(data, n);
          return page.body.size() <= kMaxPageBytes;
        });
    record_api_call(api_host_, "GET", res ? res->status : 0, started);
    if (!res && page.body.size() > kMaxPageBytes) {
      throw ClusterReadError(what + ": a page is larger than " + std::to_string(kMaxPageBytes >> 20) +
                             " MiB");
    }
    if (!res) {
      const std::string why = transport_error(res.error(), client->get_openssl_verify_result());
      throw ClusterReadError(what + " at " + credentials_.server + ": " + why);
    }
    page.status = res->status;
    return page;
  };

  bool restarted = false;
  bool continued = false;
  JsonReader reader;  // one parser for all the pages
  ApiReply page = fetch("");
  for (;;) {
    if (page.status == 410 && continued && !restarted) {
      // The continue token expired mid-list: start over once.
      restarted = true;
      continued = false;
      sink.restart();
      page = fetch("");
      continue;
    }
    // 404 on the first page: the resource is not served (no such CRD).
    if (page.status == 404 && !continued) throw ResourceNotServed(what + ": " + page.failure());
    if (page.status != 200) throw ClusterReadError(what + ": " + page.failure());
    std::string next;
    std::future<ApiReply> next_page;
    // The next page is fetched while this one is taken apart: the two take
    // about as long, and the API server works meanwhile.
    parse_list_page(
        page.body, mask, what, sink.item,
        [&](const std::string &token) {
          next = token;
          if (!next.empty()) next_page = std::async(std::launch::async, fetch, next);
        },
        &reader);
    if (next.empty()) break;
    page = next_page.get();
    continued = true;
  }
  release(std::move(client));
}

ApiReply LiveClusterView::request(const std::string &method, const std::string &path, const std::string &body,
                                  const std::string &content_type, Deadline deadline) const {
  const std::string what = method + " " + path;
  auto client = acquire();
  set_deadline(*client, deadline, what);
  const httplib::Headers headers = api_headers(bearer_token());
  auto send = [&]() -> httplib::Result {
    if (method == "GET") return client->Get(path, headers);
    if (method == "POST") return client->Post(path, headers, body, content_type);
    if (method == "PUT") return client->Put(path, headers, body, content_type);
    if (method == "PATCH") return client->Patch(path, headers, body, content_type);
    throw std::invalid_argument("no such API method " + method);
  };
  const auto started = std::chrono::steady_clock::now();
  httplib::Result res = send();
  record_api_call(api_host_, method.c_str(), res ? res->status : 0, started);
  if (!res) {
    throw ClusterReadError(what + " at " + credentials_.server + ": " +
                           transport_error(res.error(), client->get_openssl_verify_result()));
  }
  release(std::move(client));
  return {res->status, std::move(res->body)};
}

}  // namespace hci_admission
