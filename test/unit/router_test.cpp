#include "hci_admission/admission/router.hpp"
#include "hci_admission/obs/logging.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace hci_admission;

namespace {

// A policy that records what it saw and answers as told.
class FakePolicy : public Policy {
 public:
  explicit FakePolicy(Decision answer, bool throws = false) : answer_(std::move(answer)), throws_(throws) {}
  Decision review(const AdmissionRequest &request) const override {
    seen = request;
    if (throws_) throw std::runtime_error("boom");
    return answer_;
  }
  mutable AdmissionRequest seen;

 private:
  Decision answer_;
  bool throws_;
};

PolicySpec spec(const std::string &name, PolicyType type) {
  PolicySpec s;
  s.name = name;
  s.type = type;
  s.rules = {{{"CREATE", "UPDATE"}, "", {"v1"}, "configmaps", "ConfigMap"}};
  return s;
}

const std::string kReview =
    R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","operation":"CREATE",)"
    R"("kind":{"group":"","version":"v1","kind":"ConfigMap"},"resource":{"group":"","version":"v1","resource":"configmaps"},)"
    R"("object":{"a":1}}})";

// kReview with one field of its request replaced.
std::string review_with(const std::string &field, const Json &value) {
  Json review = Json::parse(kReview);
  review["request"][field] = value;
  return json_text(review);
}

HttpReply call(const AdmissionRouter &r, std::string_view method, std::string_view path,
               std::string_view body = kReview, std::string_view type = "application/json") {
  return r.handle({method, path, type, body});
}

}  // namespace

TEST_CASE("router answers health, readiness and errors with the right codes", "[router]") {
  setup_logging(LogFormat::Text, "off");
  AdmissionRouter router;
  Decision patched = Decision::allow();
  patched.patch.add("/b", 2);
  router.add(spec("m", PolicyType::Mutating), std::make_unique<FakePolicy>(patched));
  std::string not_ready = "warming up";
  router.set_readiness([&] { return not_ready; });

  CHECK(call(router, "GET", "/healthz").status == 200);
  CHECK(call(router, "HEAD", "/healthz").status == 200);
  HttpReply r = call(router, "GET", "/readyz");
  CHECK(r.status == 503);
  CHECK_THAT(r.body, Catch::Contains("warming up"));
  not_ready.clear();
  CHECK(call(router, "GET", "/readyz").status == 200);

  r = call(router, "POST", "/healthz");
  CHECK(r.status == 405);
  CHECK(r.allow == "GET, HEAD");
  r = call(router, "GET", "/mutate/m");
  CHECK(r.status == 405);
  CHECK(r.allow == "POST");
  r = call(router, "POST", "/mutate/other");
  CHECK(r.status == 404);
  CHECK_THAT(r.body, Catch::Contains("/mutate/m"));
  r = call(router, "POST", "/mutate/m", kReview, "text/plain");
  CHECK(r.status == 415);
  CHECK(call(router, "POST", "/mutate/m", kReview, "").status == 415);
  CHECK(call(router, "POST", "/mutate/m", kReview, "Application/JSON; charset=utf-8").status == 200);
  CHECK(call(router, "POST", "/mutate/m", kReview, "application/jsonx").status == 415);
  r = call(router, "POST", "/mutate/m", "{nope");
  CHECK(r.status == 400);
  CHECK(nlohmann::json::parse(r.body)["code"] == 400);
}

TEST_CASE("router passes the decoded request and encodes the decision", "[router]") {
  setup_logging(LogFormat::Text, "off");
  AdmissionRouter router;
  Decision patched = Decision::allow();
  patched.patch.add("/b", 2);
  auto policy = std::make_unique<FakePolicy>(patched);
  FakePolicy *seen = policy.get();
  router.add(spec("m", PolicyType::Mutating), std::move(policy));
  const HttpReply r = call(router, "POST", "/mutate/m");
  REQUIRE(r.status == 200);
  CHECK(seen->seen.uid == "u1");
  CHECK(seen->seen.object == hci_admission::Json{{"a", 1}});
  const auto out = nlohmann::json::parse(r.body);
  CHECK(out["response"]["uid"] == "u1");
  CHECK(out["response"]["patchType"] == "JSONPatch");
}

TEST_CASE("denials are counted by their status code, so a guard failing closed stands apart", "[router]") {
  setup_logging(LogFormat::Text, "off");
  AdmissionRouter router;
  router.add(spec("no", PolicyType::Validating),
             std::make_unique<FakePolicy>(Decision::deny(403, "Forbidden", "refused")));
  router.add(
      spec("blind", PolicyType::Validating),
      std::make_unique<FakePolicy>(Decision::deny(503, "ServiceUnavailable", "cannot read the cluster")));
  auto decisions = [](const char *policy, const char *code) {
    return metrics()
        .counter("hci_admission_decisions_total", "",
                 {{"policy", policy}, {"decision", "denied"}, {"code", code}})
        .value();
  };
  const uint64_t refused = decisions("no", "403"), blind = decisions("blind", "503");
  CHECK(call(router, "POST", "/validate/no").status == 200);
  CHECK(call(router, "POST", "/validate/blind").status == 200);
  CHECK(call(router, "POST", "/validate/blind").status == 200);
  CHECK(decisions("no", "403") == refused + 1);
  CHECK(decisions("blind", "503") == blind + 2);
  CHECK(decisions("blind", "403") == 0);
}

TEST_CASE("422 denials, and 503 for a policy that reads the cluster, show at 0 before the first one",
          "[router]") {
  setup_logging(LogFormat::Text, "off");
  AdmissionRouter router;
  PolicySpec reader = spec("reads-503", PolicyType::Validating);
  reader.reads_cluster = true;
  router.add(reader, std::make_unique<FakePolicy>(Decision::allow()));
  router.add(spec("pure-503", PolicyType::Validating), std::make_unique<FakePolicy>(Decision::allow()));
  const std::string text = metrics().render();
  CHECK_THAT(
      text,
      Catch::Contains(R"(hci_admission_decisions_total{policy="reads-503",decision="denied",code="503"} 0)"));
  CHECK_THAT(text, !Catch::Contains(R"(policy="pure-503",decision="denied",code="503")"));
  CHECK_THAT(text, Catch::Contains(
                       R"(hci_admission_decisions_total{policy="pure-503",decision="denied",code="422"} 0)"));
}

TEST_CASE("a validating policy never returns a patch", "[router]") {
  setup_logging(LogFormat::Text, "off");
  AdmissionRouter router;
  Decision patched = Decision::allow();
  patched.patch.add("/b", 2);
  router.add(spec("v", PolicyType::Validating), std::make_unique<FakePolicy>(patched));
  const HttpReply r = call(router, "POST", "/validate/v");
  REQUIRE(r.status == 200);
  CHECK_FALSE(nlohmann::json::parse(r.body)["response"].contains("patch"));
}

TEST_CASE("a policy that throws gives a 500, not a crash or an allow", "[router]") {
  setup_logging(LogFormat::Text, "off");
  AdmissionRouter router;
  router.add(spec("m", PolicyType::Mutating), std::make_unique<FakePolicy>(Decision::allow(), true));
  const HttpReply r = call(router, "POST", "/mutate/m");
  CHECK(r.status == 500);
  CHECK_THAT(r.body, Catch::Contains("boom"));
}

TEST_CASE("the router calls a policy only for what its rules match", "[router]") {
  setup_logging(LogFormat::Text, "off");
  AdmissionRouter router;
  auto owned = std::make_unique<FakePolicy>(Decision::deny(403, "Forbidden", "no"));
  const FakePolicy *policy = owned.get();
  router.add(spec("v", PolicyType::Validating), std::move(owned));
  auto decide = [&](const std::string &body) {
    policy->seen = AdmissionRequest{};
    const HttpReply r = call(router, "POST", "/validate/v", body);
    REQUIRE(r.status == 200);
    return Json::parse(r.body)["response"];
  };

  CHECK(decide(kReview)["allowed"] == false);
  CHECK(policy->seen.uid == "u1");

  SECTION("a review without a resource is judged by its kind") {
    Json review = Json::parse(kReview);
    review["request"].erase("resource");
    CHECK(decide(json_text(review))["allowed"] == false);
    CHECK(policy->seen.uid == "u1");
  }
  SECTION("an operation the rules leave out is allowed silently") {
    const Json out = decide(review_with("operation", "DELETE"));
    CHECK(out["allowed"] == true);
    CHECK_FALSE(out.contains("warnings"));
    CHECK(policy->seen.uid.empty());
  }
  SECTION("another resource, version, subresource or kind is allowed with a warning") {
    for (const auto &body :
         {review_with("resource", {{"group", ""}, {"version", "v1"}, {"resource", "secrets"}}),
          review_with("resource", {{"group", ""}, {"version", "v2"}, {"resource", "configmaps"}}),
          review_with("resource", {{"group", "apps"}, {"version", "v1"}, {"resource", "configmaps"}}),
          review_with("subResource", "status"),
          review_with("kind", {{"group", ""}, {"version", "v1"}, {"kind", "Secret"}})}) {
      INFO(body);
      const Json out = decide(body);
      CHECK(out["allowed"] == true);
      REQUIRE(out["warnings"].size() == 1);
      CHECK_THAT(out["warnings"][0].get<std::string>(), Catch::Contains("v expects core/v1 ConfigMap, got"));
      CHECK(policy->seen.uid.empty());
    }
  }
}

TEST_CASE("a policy spec without rules is refused at registration", "[router]") {
  AdmissionRouter router;
  PolicySpec s = spec("r", PolicyType::Mutating);
  s.rules.clear();
  CHECK_THROWS_AS(router.add(s, std::make_unique<FakePolicy>(Decision::allow())), std::invalid_argument);
}

namespace {

// A policy that reads the cluster for some requests: those whose object
// says so.
class SometimesReading : public Policy {
 public:
  Decision review(const AdmissionRequest &) const override {
    ++reviews;
    return Decision::deny(403, "Forbidden", "read and refused");
  }
  bool reads_cluster_for(const AdmissionRequest &request) const override {
    return request.object.value("read", false);
  }
  mutable int reviews = 0;
};

// The same through views; what review() saw of the object, on the worker.
class SometimesReadingViews : public Policy {
 public:
  Decision review(const AdmissionRequest &request) const override {
    seen = request.object_view["note"].string();
    return Decision::allow();
  }
  bool reads_cluster_for(const AdmissionRequest &request) const override {
    return request.object_view["read"].to_json() == true;
  }
  mutable std::string seen;
};

}  // namespace

TEST_CASE("a review that may read the cluster is finished on a worker, the others at once", "[router]") {
  setup_logging(LogFormat::Text, "off");
  AdmissionRouter router;
  PolicySpec s = spec("reader", PolicyType::Validating);
  s.reads_cluster = true;
  auto owned = std::make_unique<SometimesReading>();
  const SometimesReading *policy = owned.get();
  router.add(s, std::move(owned));
  Gauge &in_flight = metrics().gauge("controller_runtime_webhook_requests_in_flight",
                                     "Current number of admission requests being served.",
                                     {{"webhook", "/validate/reader"}});
  Histogram &latency = metrics().histogram("controller_runtime_webhook_latency_seconds",
                                           "Histogram of the latency of processing admission requests",
                                           {{"webhook", "/validate/reader"}});
  const auto observed = [&] { return latency.cumulative().back(); };

  // Needs no read: answered here, no worker.
  HttpReply r = call(router, "POST", "/validate/reader", review_with("object", {{"read", false}}));
  CHECK_FALSE(r.finish_on_worker);
  CHECK(r.status == 200);
  CHECK(policy->reviews == 1);
  CHECK(in_flight.value() == 0);
  CHECK(observed() == 1);

  // May read: nothing decided yet, and the review stays in flight until
  // the worker's part has run.
  r = call(router, "POST", "/validate/reader", review_with("object", {{"read", true}}));
  REQUIRE(r.finish_on_worker);
  CHECK(policy->reviews == 1);
  CHECK(in_flight.value() == 1);
  CHECK(observed() == 1);
  const HttpReply answer = r.finish_on_worker();
  CHECK(policy->reviews == 2);
  REQUIRE(answer.status == 200);
  const auto response = Json::parse(answer.body)["response"];
  CHECK(response["uid"] == "u1");
  CHECK(response["status"]["code"] == 403);
  r = HttpReply();
  CHECK(in_flight.value() == 0);
  CHECK(observed() == 2);  // once, when the worker's part is done

  // A request the rules screen out never goes to a worker.
  r = call(router, "POST", "/validate/reader", review_with("operation", "DELETE"));
  CHECK_FALSE(r.finish_on_worker);
  CHECK(policy->reviews == 2);
  // Nor does a review that cannot be read.
  CHECK(call(router, "POST", "/validate/reader", "{nope").status == 400);
}

// A policy reading views whose review goes to a worker gets views into a
// parser of their own: the loop's is parsing the next reviews meanwhile.
TEST_CASE("views follow a review to a worker in a document of their own", "[router]") {
  setup_logging(LogFormat::Text, "off");
  AdmissionRouter router;
  PolicySpec s = spec("view-reader", PolicyType::Validating);
  s.reads_cluster = true;
  s.reads_views = true;
  s.object_fields = {"/read", "/note"};
  auto owned = std::make_unique<SometimesReadingViews>();
  const SometimesReadingViews *policy = owned.get();
  router.add(s, std::move(owned));
  HttpReply r = call(router, "POST", "/validate/view-reader",
                     review_with("object", {{"read", true}, {"note", "first"}, {"other", 1}}));
  REQUIRE(r.finish_on_worker);
  // Other reviews are read on this thread before the worker runs.
  for (int i = 0; i < 3; ++i) {
    CHECK(call(router, "POST", "/validate/view-reader",
               review_with("object", {{"read", false}, {"note", "later " + std::to_string(i)}}))
              .status == 200);
    CHECK(policy->seen == "later " + std::to_string(i));
  }
  HttpReply answer;
  std::thread worker([&] { answer = r.finish_on_worker(); });
  worker.join();
  CHECK(answer.status == 200);
  CHECK(policy->seen == "first");
}
