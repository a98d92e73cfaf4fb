#include "hci_admission/server.hpp"

#include "hci_admission/logging.hpp"
#include "hci_admission/review_codec.hpp"
#include "hci_admission/worker_pool.hpp"

#include <httplib.h>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace hci_admission {
namespace {

HttpReply error_reply(int status, const std::string &message) {
  Json body = {{"error", message}, {"code", status}};
  return {status, "application/json", body.dump(-1, ' ', false, Json::error_handler_t::replace), ""};
}

HttpReply text_reply(int status, std::string text) {
  return {status, "text/plain; charset=utf-8", std::move(text), ""};
}

bool is_json_media_type(std::string_view content_type) {
  const size_t end = content_type.find(';');
  std::string_view media = content_type.substr(0, end);
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
  constexpr std::string_view kJson = "application/json";
  return media.size() == kJson.size() &&
         std::equal(media.begin(), media.end(), kJson.begin(),
                    [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
}

// "ns/name"; a Pod created from generateName has no name yet, so its
// prefix stands in for it.
std::string object_name(const AdmissionRequest &req) {
  std::string name = req.name;
  if (name.empty() && req.object.is_object()) {
    auto meta = req.object.find("metadata");
    if (meta != req.object.end() && meta->is_object()) {
      auto gen = meta->find("generateName");
      if (gen != meta->end() && gen->is_string()) name = gen->get<std::string>();
    }
  }
  return req.namespace_name.empty() ? name : req.namespace_name + "/" + name;
}

const char *outcome(const Decision &d) {
  if (!d.allowed) return "denied";
  return d.patch.empty() ? "allowed" : "patched";
}

}  // namespace

void AdmissionRouter::add(const PolicySpec &spec, std::unique_ptr<Policy> policy) {
  ObjectFields fields{FieldMask::of(spec.object_fields), FieldMask::of(spec.old_object_fields)};
  routes_[spec.path()] = Route{spec.name, spec.type, std::move(policy), std::move(fields)};
}

std::vector<std::string> AdmissionRouter::paths() const {
  std::vector<std::string> out;
  for (const auto &r : routes_) out.push_back(r.first);
  std::sort(out.begin(), out.end());
  return out;
}

HttpReply AdmissionRouter::handle(const HttpRequestView &request) const {
  const bool read_only = request.method == "GET" || request.method == "HEAD";
  if (request.path == "/healthz" || request.path == "/readyz") {
    if (!read_only) {
      HttpReply r = error_reply(405, "method " + std::string(request.method) + " not allowed on " +
                                         std::string(request.path) + "; use GET");
      r.allow = "GET, HEAD";
      return r;
    }
    if (request.path == "/readyz" && readiness_) {
      std::string why = readiness_();
      if (!why.empty()) return text_reply(503, "not ready: " + why + "\n");
    }
    return text_reply(200, "ok\n");
  }
  auto it = routes_.find(std::string(request.path));
  if (it == routes_.end()) {
    std::string known;
    for (const auto &p : paths()) known += (known.empty() ? "" : ", ") + p;
    return error_reply(
        404, "no webhook at " + std::string(request.path) + " (served: " + known + ", /healthz, /readyz)");
  }
  if (request.method != "POST") {
    HttpReply r = error_reply(405, "method " + std::string(request.method) + " not allowed on " +
                                       std::string(request.path) + "; use POST");
    r.allow = "POST";
    return r;
  }
  if (request.body_too_large) {
    return error_reply(413,
                       "request body exceeds the limit of " + std::to_string(max_body_bytes_) + " bytes");
  }
  if (!is_json_media_type(request.content_type)) {
    return error_reply(415, "content type \"" + std::string(request.content_type) +
                                "\" not supported; send application/json");
  }
  return admit(it->second, request.body);
}

HttpReply AdmissionRouter::admit(const Route &route, std::string_view body) const {
  const auto started = std::chrono::steady_clock::now();
  DecodedReview review;
  try {
    review = decode_review(body, route.fields);
  } catch (const ReviewError &e) {
    LogLine("bad admission review").field("policy", route.name).field("error", e.what()).warn();
    return error_reply(400, e.what());
  }
  const AdmissionRequest &req = review.request;
  Decision decision;
  try {
    decision = route.policy->review(req);
  } catch (const std::exception &e) {
    // The API server treats a 500 by the webhook's failurePolicy.
    LogLine("policy failed")
        .field("uid", req.uid)
        .field("policy", route.name)
        .field("error", e.what())
        .error();
    return error_reply(500, "policy " + route.name + " failed: " + e.what());
  }
  if (route.type == PolicyType::Validating && !decision.patch.empty()) {
    LogLine("validating policy returned a patch; dropped").field("policy", route.name).error();
    decision.patch = JsonPatch();
  }
  HttpReply reply{200, "application/json", encode_review(review.api_version, req.uid, decision), ""};
  if (!spdlog::should_log(spdlog::level::info)) return reply;
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  LogLine line("admission");
  line.field("uid", req.uid)
      .field("policy", route.name)
      .field("kind", req.kind.kind)
      .field("object", object_name(req))
      .field("operation", req.operation)
      .field("decision", outcome(decision))
      .field("patch_ops", decision.patch.size())
      .field("warnings", decision.warnings.size())
      .field("dry_run", req.dry_run)
      .field("duration_ms", ms);
  if (!decision.allowed) line.field("reason", decision.message);
  line.info();
  return reply;
}

AdmissionServer::AdmissionServer(ServerConfig config, std::shared_ptr<TlsContext> tls,
                                 std::shared_ptr<const AdmissionRouter> router)
    : config_(std::move(config)), tls_(std::move(tls)), router_(std::move(router)) {
  http_ = std::make_unique<httplib::SSLServer>([this](SSL_CTX &ctx) { return tls_->configure(ctx); });
  if (!http_->is_valid()) throw std::runtime_error("cannot set up TLS");

  const size_t max_connections = config_.max_connections;
  http_->new_task_queue = [max_connections] {
    return new WorkerPool(max_connections, std::chrono::seconds(30));
  };
  // Measured: without these, the packaged cpp-httplib closes every
  // connection after 5 requests and Nagle delays each response by ~40 ms.
  http_->set_tcp_nodelay(true);
  http_->set_keep_alive_max_count(std::max<size_t>(1, config_.max_requests_per_connection));
  http_->set_keep_alive_timeout(config_.idle_timeout.count());
  http_->set_read_timeout(config_.read_timeout.count(), 0);
  http_->set_write_timeout(config_.write_timeout.count(), 0);
  http_->set_payload_max_length(router_->max_body_bytes());
  http_->set_socket_options([this](int fd) {
    // SO_REUSEADDR but not SO_REUSEPORT: a second server on the same port
    // must fail to start instead of silently sharing it.
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd_ = fd;
  });

  auto send = [](const HttpReply &reply, httplib::Response &res) {
    res.status = reply.status;
    if (!reply.allow.empty()) res.set_header("Allow", reply.allow);
    res.set_content(reply.body, reply.content_type.c_str());
  };

  auto with_body = [this, send](const httplib::Request &req, httplib::Response &res,
                                const httplib::ContentReader &reader) {
    const size_t limit = router_->max_body_bytes();
    // Reused by the connection's thread: a fresh multi-kilobyte buffer per
    // request was a measurable share of malloc time.
    thread_local std::string body;
    body.clear();
    if (body.capacity() > (256u << 10)) body.shrink_to_fit();
    bool too_large = false;
    // A request with neither Content-Length nor chunked encoding has no body
    // (RFC 9112 6.3); reading it until EOF would hang the connection.
    if (req.has_header("Content-Length") ||
        req.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos) {
      if (req.has_header("Content-Length")) {
        body.reserve(std::min<uint64_t>(limit, req.get_header_value<uint64_t>("Content-Length")));
      }
      const bool read = reader([&](const char *data, size_t n) {
        if (body.size() + n > limit) {
          too_large = true;
          return false;
        }
        body.append(data, n);
        return true;
      });
      if (!read && res.status == 413) too_large = true;
      if (!read && !too_large) {
        send(error_reply(400, "could not read the request body"), res);
        res.set_header("Connection", "close");
        return;
      }
      if (too_large && res.status != 413) {
        // The rest of a chunked body is still on the wire: close after
        // answering instead of reading it as the next request.
        res.set_header("Connection", "close");
        if (req.ssl != nullptr) ::shutdown(SSL_get_fd(req.ssl), SHUT_RD);
      }
    }
    send(router_->handle({req.method, req.path, req.get_header_value("Content-Type"), body, too_large}), res);
  };
  auto without_body = [this, send](const httplib::Request &req, httplib::Response &res) {
    send(router_->handle({req.method, req.path, req.get_header_value("Content-Type"), "", false}), res);
  };
  // Routing is done by AdmissionRouter with a hash lookup; httplib only
  // dispatches by method.
  http_->Post(".*", with_body);
  http_->Put(".*", with_body);
  http_->Patch(".*", with_body);
  http_->Delete(".*", with_body);
  http_->Get(".*", without_body);
  http_->Options(".*", without_body);
}

AdmissionServer::~AdmissionServer() { stop(); }

void AdmissionServer::bind() {
  errno = 0;
  if (!http_->bind_to_port(config_.bind_address, config_.port)) {
    const std::string why = errno != 0 ? std::strerror(errno) : "address not available";
    throw std::runtime_error("cannot listen on " + config_.bind_address + ":" + std::to_string(config_.port) +
                             ": " + why);
  }
  // cpp-httplib listens with a backlog of 5, which drops connections when
  // many clients connect at once; listen() again raises it.
  if (listen_fd_ >= 0) ::listen(listen_fd_, SOMAXCONN);
  bound_port_ = config_.port;
  if (bound_port_ == 0 && listen_fd_ >= 0) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (getsockname(listen_fd_, reinterpret_cast<sockaddr *>(&addr), &len) == 0) {
      if (addr.ss_family == AF_INET) bound_port_ = ntohs(reinterpret_cast<sockaddr_in *>(&addr)->sin_port);
      if (addr.ss_family == AF_INET6) bound_port_ = ntohs(reinterpret_cast<sockaddr_in6 *>(&addr)->sin6_port);
    }
  }
  listening_ = true;
}

void AdmissionServer::serve() {
  http_->listen_after_bind();
  listening_ = false;
}

void AdmissionServer::stop() {
  listening_ = false;
  if (http_ && http_->is_running()) http_->stop();
}

}  // namespace hci_admission
