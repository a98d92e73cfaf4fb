#include "hci_admission/admission/router.hpp"

#include "hci_admission/admission/review_codec.hpp"
#include "hci_admission/obs/logging.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>

namespace hci_admission {
namespace {

HttpReply text_reply(int status, std::string text) {
  return {status, "text/plain; charset=utf-8", std::move(text), ""};
}

bool is_json_media_type(std::string_view content_type) {
  const size_t end = content_type.find(';');
  std::string_view media = content_type.substr(0, end);
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
  constexpr std::string_view kJson = "application/json";
  // ASCII case folding, not std::tolower (a libc call for each byte).
  return media.size() == kJson.size() &&
         std::equal(media.begin(), media.end(), kJson.begin(), [](char a, char b) {
           return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
         });
}

// "ns/name"; a Pod created from generateName has no name yet, so its
// prefix stands in for it.
std::string object_name(const AdmissionRequest &req) {
  std::string name = req.name;
  if (name.empty() && req.object_view.exists()) {
    name = std::string(req.object_view["metadata"]["generateName"].string());
  } else if (name.empty() && req.object.is_object()) {
    auto meta = req.object.find("metadata");
    if (meta != req.object.end() && meta->is_object()) {
      auto gen = meta->find("generateName");
      if (gen != meta->end() && gen->is_string()) name = gen->get<std::string>();
    }
  }
  return req.namespace_name.empty() ? name : req.namespace_name + "/" + name;
}

// kube-apiserver sends "?timeout=10s", the webhook's timeoutSeconds. The
// answer is due a little before, so that a slow read ends with our
// message rather than the API server's timeout.
std::chrono::milliseconds answer_within(std::string_view query) {
  constexpr auto kNoLimit = std::chrono::milliseconds::max();
  const size_t at = query.find("timeout=");
  if (at == std::string_view::npos || (at > 0 && query[at - 1] != '&')) return kNoLimit;
  long long seconds = 0;
  size_t i = at + 8;
  for (; i < query.size() && query[i] >= '0' && query[i] <= '9' && seconds < 100000; ++i)
    seconds = seconds * 10 + (query[i] - '0');
  if (i == at + 8 || i >= query.size() || query[i] != 's') return kNoLimit;
  const auto total = std::chrono::milliseconds(seconds * 1000);
  return total - std::min<std::chrono::milliseconds>(total / 5, std::chrono::seconds(1));
}

constexpr const char *kRequestsTotal = "controller_runtime_webhook_requests_total";
constexpr const char *kRequestsHelp = "Total number of admission requests by HTTP status code.";
constexpr const char *kDecisionsTotal = "hci_admission_decisions_total";
constexpr const char *kDecisionsHelp =
    "Admission requests by policy, decision (allowed, denied, patched, error) and status code: the HTTP "
    "status of an error, the AdmissionReview's status code of a denial (403, 422...; 503 when a guard "
    "cannot read the cluster), 200 otherwise.";

// What a policy saw, for --log-objects; a Secret's data never.
std::string loggable_object(const AdmissionRequest &req) {
  // A policy reading views saw the same masked fields.
  const Json object = req.object_view.exists() ? req.object_view.to_json() : Json();
  const Json &seen = req.object_view.exists() ? object : req.object;
  if (req.kind.kind == "Secret" && seen.is_object()) {
    Json copy = seen;
    for (const char *key : {"data", "stringData"}) {
      if (copy.contains(key)) copy[key] = "(redacted)";
    }
    return json_text(copy);
  }
  return json_text(seen);
}

const char *outcome(const Decision &d) {
  if (!d.allowed) return "denied";
  return d.patch.empty() ? "allowed" : "patched";
}

}  // namespace

void AdmissionRouter::add(const PolicySpec &spec, std::unique_ptr<Policy> policy) {
  if (spec.rules.empty()) {
    throw std::invalid_argument("policy " + spec.name + " declares no rules: it would never be called");
  }
  ObjectFields fields{FieldMask::of(spec.object_fields), FieldMask::of(spec.old_object_fields),
                      spec.reads_views, spec.reads_user_info};
  const std::string path = spec.path();
  MetricsRegistry &m = metrics();
  RouteMetrics rm;
  rm.ok = &m.counter(kRequestsTotal, kRequestsHelp, {{"webhook", path}, {"code", "200"}});
  rm.in_flight = &m.gauge("controller_runtime_webhook_requests_in_flight",
                          "Current number of admission requests being served.", {{"webhook", path}});
  rm.latency = &m.histogram("controller_runtime_webhook_latency_seconds",
                            "Histogram of the latency of processing admission requests", {{"webhook", path}});
  auto decision = [&](const char *d, const char *code) {
    return &m.counter(kDecisionsTotal, kDecisionsHelp,
                      {{"policy", spec.name}, {"decision", d}, {"code", code}});
  };
  rm.allowed = decision("allowed", "200");
  rm.patched = decision("patched", "200");
  // The usual denial codes exist from the start, so that increase() counts
  // a pod's first one: 403, 422 (what the guards refuse with) and, for a
  // policy that reads the cluster, 503 (it could not; an alert watches it).
  decision("denied", "403");
  decision("denied", "422");
  if (spec.reads_cluster) decision("denied", "503");
  routes_[path] = Route{spec, path, std::move(policy), std::move(fields), rm};
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
  if (client_auth_) {
    if (request.client_names == nullptr || request.client_names->empty()) {
      return error_reply(401, "a client certificate signed by a CA in --client-ca-file is required");
    }
    if (!allowed_client_names_.empty() &&
        std::none_of(request.client_names->begin(), request.client_names->end(), [&](const std::string &n) {
          return std::find(allowed_client_names_.begin(), allowed_client_names_.end(), n) !=
                 allowed_client_names_.end();
        })) {
      std::string names;
      for (const auto &n : *request.client_names) names += (names.empty() ? "" : ", ") + n;
      LogLine("client certificate not allowed").field("names", names).field("path", request.path).warn();
      return error_reply(403, "client certificate (" + names + ") is not in --client-allowed-names");
    }
  }
  if (request.path == "/metrics") {
    if (!read_only) {
      HttpReply r =
          error_reply(405, "method " + std::string(request.method) + " not allowed on /metrics; use GET");
      r.allow = "GET, HEAD";
      return r;
    }
    return {200, "text/plain; version=0.0.4; charset=utf-8", metrics().render(), ""};
  }
  auto it = routes_.find(request.path);
  if (it == routes_.end()) {
    std::string known;
    for (const auto &p : paths()) known += (known.empty() ? "" : ", ") + p;
    return error_reply(404, "no webhook at " + std::string(request.path) + " (served: " + known +
                                ", /healthz, /readyz, /metrics)");
  }
  if (request.method != "POST") {
    return failed(it->second, 405,
                  "method " + std::string(request.method) + " not allowed on " + std::string(request.path) +
                      "; use POST",
                  "");
  }
  if (!is_json_media_type(request.content_type)) {
    return failed(
        it->second, 415,
        "content type \"" + std::string(request.content_type) + "\" not supported; send application/json",
        "");
  }
  return admit(it->second, request);
}

HttpReply AdmissionRouter::failed(const Route &route, int status, const std::string &message,
                                  const std::string &uid) const {
  HttpReply reply = error_reply(status, message);
  if (status == 405) reply.allow = "POST";
  const std::string code = std::to_string(status);
  metrics().counter(kRequestsTotal, kRequestsHelp, {{"webhook", route.path}, {"code", code}}).inc();
  metrics()
      .counter(kDecisionsTotal, kDecisionsHelp,
               {{"policy", route.spec.name}, {"decision", "error"}, {"code", code}})
      .inc();
  LogLine line("admission failed");
  if (!uid.empty()) line.field("uid", uid);
  line.field("policy", route.spec.name)
      .field("webhook", route.path)
      .field("decision", "error")
      .field("code", reply.status)
      .field("error", message);
  if (reply.status >= 500) {
    line.error();
  } else {
    line.warn();
  }
  return reply;
}

namespace {

// Holds a review in flight and times it, from the request's arrival to its
// answer, wherever the answer is made.
class InFlight {
 public:
  InFlight(Gauge &in_flight, Histogram &latency, std::chrono::steady_clock::time_point started)
      : in_flight_(&in_flight), latency_(&latency), started_(started) {
    in_flight_->add(1);
  }
  InFlight(InFlight &&other) noexcept
      : in_flight_(std::exchange(other.in_flight_, nullptr)),
        latency_(other.latency_),
        started_(other.started_) {}
  InFlight(const InFlight &) = delete;
  InFlight &operator=(const InFlight &) = delete;
  InFlight &operator=(InFlight &&) = delete;
  ~InFlight() {
    if (in_flight_ == nullptr) return;
    in_flight_->add(-1);
    latency_->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
  }

 private:
  Gauge *in_flight_;
  Histogram *latency_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace

HttpReply AdmissionRouter::admit(const Route &route, const HttpRequestView &request) const {
  const std::string_view body = request.body;
  const auto started = std::chrono::steady_clock::now();
  InFlight in_flight(*route.metrics.in_flight, *route.metrics.latency, started);
  // Decoded straight into place: assigning the decoded review over a
  // default one moved each of its strings again (400 instructions).
  std::optional<std::string> unreadable;
  DecodedReview review = [&] {
    try {
      return decode_review(body, route.fields, false, request.body_padding);
    } catch (const ReviewError &e) {
      unreadable = e.what();
    } catch (const std::exception &e) {
      // Not expected (the decoder reports problems as ReviewError), but a
      // request must never take the server down.
      unreadable = std::string("cannot read the review: ") + e.what();
    }
    return DecodedReview();
  }();
  if (unreadable) return failed(route, 400, *unreadable, "");
  review.request.deadline = started + std::min(cluster_read_timeout_, answer_within(request.query));
  std::optional<Decision> screened;
  bool may_read = false;
  try {
    screened = route.spec.screen(review.request);
    may_read = route.spec.reads_cluster && !screened && route.policy->reads_cluster_for(review.request);
  } catch (const std::exception &e) {
    return failed(route, 500, "policy " + route.spec.name + " failed: " + e.what(), review.request.uid);
  }
  if (!may_read) return decide(route, review, started, std::move(screened));
  // Reading may block: the rest runs on a worker, the review decoded once;
  // twice when the policy reads views, so that they point into a parser of
  // their own and not the one this loop keeps for the next review (a
  // review that reads the cluster costs far more than a second parse).
  if (route.fields.views) {
    try {
      const Deadline deadline = review.request.deadline;
      review = DecodedReview();  // this loop's parser is free again
      review = decode_review(body, route.fields, true);
      review.request.deadline = deadline;
    } catch (const std::exception &e) {
      return failed(route, 400, std::string("cannot read the review: ") + e.what(), "");
    }
  }
  HttpReply reply;
  auto held = std::make_shared<std::pair<DecodedReview, InFlight>>(std::move(review), std::move(in_flight));
  reply.finish_on_worker = [this, &route, held, started] { return decide(route, held->first, started, {}); };
  return reply;
}

HttpReply AdmissionRouter::decide(const Route &route, DecodedReview &review,
                                  std::chrono::steady_clock::time_point started,
                                  std::optional<Decision> screened) const {
  const RouteMetrics &m = route.metrics;
  AdmissionRequest &req = review.request;
  std::optional<std::string> failure;
  Decision decision = [&] {
    try {
      return screened ? std::move(*screened) : route.policy->review(req);
    } catch (const std::exception &e) {
      failure = e.what();
    }
    return Decision();
  }();
  // The API server treats a 500 by the webhook's failurePolicy.
  if (failure) return failed(route, 500, "policy " + route.spec.name + " failed: " + *failure, req.uid);
  if (route.spec.type == PolicyType::Validating && !decision.patch.empty()) {
    LogLine("validating policy returned a patch; dropped").field("policy", route.spec.name).error();
    decision.patch = JsonPatch();
  }
  HttpReply reply{200, "application/json", encode_review(review.api_version, req.uid, decision), ""};
  m.ok->inc();
  if (decision.allowed) {
    (decision.patch.empty() ? m.allowed : m.patched)->inc();
  } else {
    // Denials are counted under the code the response carries (422, 503 when
    // a guard fails closed, 409...), looked up by label under the registry's
    // lock: they are the rare answer, and an alert needs the codes apart.
    metrics()
        .counter(
            kDecisionsTotal, kDecisionsHelp,
            {{"policy", route.spec.name}, {"decision", "denied"}, {"code", std::to_string(decision.code)}})
        .inc();
  }
  if (!spdlog::should_log(spdlog::level::info)) return reply;
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  LogLine line("admission");
  line.field("uid", req.uid)
      .field("policy", route.spec.name)
      .field("webhook", route.path)
      .field("kind", req.kind.kind)
      .field("object", object_name(req))
      .field("operation", req.operation)
      .field("decision", outcome(decision))
      .field("code", 200)
      .field("patch_ops", decision.patch.size())
      .field("warnings", decision.warnings.size())
      .field("dry_run", req.dry_run)
      .field("duration_ms", ms);
  if (!decision.allowed) line.field("reason", decision.message);
  if (log_objects_) line.field("request_object", loggable_object(req));
  line.info();
  return reply;
}

}  // namespace hci_admission
