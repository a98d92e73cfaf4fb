// Every step of a self-managed rotation (README, "Self-managed certificates")
// as plan_secret and plan_ca_bundle_patch see it, with a fixed clock: the
// Secret written by one plan is what the next plan reads.
#include "hci_admission/certs/rotation_plan.hpp"
#include "hci_admission/certs/self_managed_certs.hpp"
#include "hci_admission/common/base64.hpp"

#include <catch2/catch.hpp>

using namespace hci_admission;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

namespace {

using Clock = std::chrono::system_clock;
const Clock::time_point kStart = Clock::from_time_t(1767225600);  // 2026-01-01T00:00:00Z

SelfManagedCertsConfig test_config() {
  SelfManagedCertsConfig c;
  c.secret_namespace = "hci-admission";
  c.secret_name = "tls";
  c.dns_names = {"hci-admission.hci-admission.svc"};
  c.ca_validity = hours(24 * 30);   // renewed with 10 days left
  c.cert_validity = hours(24 * 3);  // renewed with a day left
  c.trust_delay = minutes(2);
  return c;
}

// The Secret as the API stores what a plan wrote.
SecretState stored(const SecretPlan &plan) {
  REQUIRE(plan.secret);
  return decode_secret(json_text(*plan.secret));
}

size_t bundle_size(const SecretState &s) {
  return split_pem_bundle(s.value(secret_keys::kTrustBundle)).size();
}

// A webhook configuration with two webhooks whose caBundle is `bundle_pem`
// at `generation` (0: no annotation).
Json webhook_config(const std::string &bundle_pem, long long generation) {
  Json c = {
      {"metadata", {{"name", "hci-admission"}}},
      {"webhooks",
       {{{"name", "a.hci-admission.io"}, {"clientConfig", {{"caBundle", base64_encode(bundle_pem)}}}},
        {{"name", "b.hci-admission.io"}, {"clientConfig", {{"caBundle", base64_encode(bundle_pem)}}}}}}};
  if (generation > 0) c["metadata"]["annotations"][kBundleGeneration] = std::to_string(generation);
  return c;
}

bool has_note(const SecretPlan &plan, const std::string &text) {
  return std::any_of(plan.notes.begin(), plan.notes.end(),
                     [&](const std::string &n) { return n.find(text) != std::string::npos; });
}

}  // namespace

TEST_CASE("rotation: the first pass makes a CA that signs at once", "[certs][rotation]") {
  const auto config = test_config();
  const SecretPlan first = plan_secret(config, SecretState{}, {std::nullopt}, kStart);
  const SecretState s = stored(first);
  CHECK(first.generation == 1);
  CHECK(has_note(first, "a new CA is made"));
  CHECK(has_note(first, "signs serving certificates from now on"));
  CHECK(has_note(first, "serving certificate issued"));
  CHECK(signed_by(s.value(secret_keys::kServingCert), s.value(secret_keys::kSignerCert)));
  CHECK(inspect_certificate(s.value(secret_keys::kServingCert)).dns_names == config.dns_names);
  CHECK(s.value(secret_keys::kTrustBundle) == s.value(secret_keys::kSignerCert));
  CHECK(s.value(secret_keys::kNextSignerCert).empty());
  CHECK((*first.secret)["type"] == "kubernetes.io/tls");

  SECTION("and a second pass at the same time changes nothing") {
    const SecretPlan again =
        plan_secret(config, s, {webhook_config(s.value(secret_keys::kTrustBundle), 1)}, kStart);
    CHECK_FALSE(again.secret);
    CHECK(again.generation == 1);
  }
}

TEST_CASE("rotation: the serving certificate is renewed with a third of its validity left",
          "[certs][rotation]") {
  const auto config = test_config();
  const SecretState s = stored(plan_secret(config, SecretState{}, {}, kStart));
  const std::string first_serving = s.value(secret_keys::kServingCert);
  // Two thirds of 3 days have passed at 48 h (the certificate is backdated
  // a little): just before, nothing; just after, renewed by the same CA.
  CHECK_FALSE(plan_secret(config, s, {}, kStart + hours(47)).secret);
  const SecretPlan renewed = plan_secret(config, s, {}, kStart + hours(49));
  const SecretState r = stored(renewed);
  CHECK(has_note(renewed, "serving certificate renewed"));
  CHECK(r.value(secret_keys::kServingCert) != first_serving);
  CHECK(r.value(secret_keys::kSignerCert) == s.value(secret_keys::kSignerCert));
  CHECK(signed_by(r.value(secret_keys::kServingCert), s.value(secret_keys::kSignerCert)));
  // The trust bundle did not change, so neither does its generation.
  CHECK(renewed.generation == 1);
  CHECK(r.value(secret_keys::kTrustBundle) == s.value(secret_keys::kTrustBundle));
}

TEST_CASE("rotation: new names get a new serving certificate", "[certs][rotation]") {
  auto config = test_config();
  const SecretState s = stored(plan_secret(config, SecretState{}, {}, kStart));
  config.dns_names = {"hci-admission.other.svc"};
  const SecretState r = stored(plan_secret(config, s, {}, kStart + minutes(1)));
  CHECK(inspect_certificate(r.value(secret_keys::kServingCert)).dns_names == config.dns_names);
}

TEST_CASE("rotation: a new CA joins the bundle, waits to be trusted, then signs", "[certs][rotation]") {
  const auto config = test_config();
  const SecretState s = stored(plan_secret(config, SecretState{}, {}, kStart));
  const std::string old_ca = s.value(secret_keys::kSignerCert);

  // 21 days in, less than a third of the CA's 30 days is left.
  const auto t1 = kStart + hours(24 * 21);
  const SecretPlan joined = plan_secret(config, s, {webhook_config(old_ca, 1)}, t1);
  const SecretState j = stored(joined);
  CHECK(has_note(joined, "a new CA joins the trust bundle"));
  CHECK(joined.generation == 2);
  CHECK(bundle_size(j) == 2);
  const std::string new_ca = j.value(secret_keys::kNextSignerCert);
  REQUIRE_FALSE(new_ca.empty());
  CHECK(j.value(secret_keys::kSignerCert) == old_ca);  // the old CA still signs
  CHECK(j.metadata["annotations"][kTrustUpdatedAt] == format_utc(t1));
  const std::string bundle = j.value(secret_keys::kTrustBundle);

  SECTION("a webhook configuration that does not carry the new CA holds the switch back") {
    const auto later = t1 + hours(1);
    const SecretPlan held = plan_secret(config, j, {webhook_config(old_ca, 1)}, later);
    CHECK_FALSE(held.secret);
    // ...and gets the bundle from the patch plan.
    const auto ops = plan_ca_bundle_patch(webhook_config(old_ca, 1), bundle, j.generation);
    REQUIRE(ops);
    CHECK(ops->dump().find(base64_encode(bundle)) != std::string::npos);
  }
  SECTION("trusted everywhere but within the trust delay: still the old CA") {
    CHECK_FALSE(plan_secret(config, j, {webhook_config(bundle, 2)}, t1 + minutes(1)).secret);
  }
  SECTION("trusted everywhere and the delay passed: the new CA signs a new serving certificate") {
    const SecretPlan switched = plan_secret(config, j, {webhook_config(bundle, 2)}, t1 + minutes(3));
    const SecretState w = stored(switched);
    CHECK(has_note(switched, "the new CA signs serving certificates from now on"));
    CHECK(has_note(switched, "serving certificate renewed"));
    CHECK(w.value(secret_keys::kSignerCert) == new_ca);
    CHECK(w.value(secret_keys::kNextSignerCert).empty());
    CHECK(signed_by(w.value(secret_keys::kServingCert), new_ca));
    // The old CA stays trusted until it expires: certificates it signed are
    // still being served by replicas that have not reloaded yet.
    CHECK(bundle_size(w) == 2);
    CHECK(switched.generation == 2);

    SECTION("once the old CA expires it leaves the bundle") {
      const auto expired = kStart + hours(24 * 31);
      const SecretPlan cleaned = plan_secret(config, w, {webhook_config(bundle, 2)}, expired);
      const SecretState c = stored(cleaned);
      CHECK(has_note(cleaned, "expired CA left out of the trust bundle"));
      CHECK(bundle_size(c) == 1);
      CHECK(c.value(secret_keys::kTrustBundle) == new_ca);
      CHECK(cleaned.generation == 3);
    }
  }
}

TEST_CASE("rotation: racing replicas never go back a generation", "[certs][rotation]") {
  const auto config = test_config();
  const SecretState s = stored(plan_secret(config, SecretState{}, {}, kStart));
  const std::string bundle = s.value(secret_keys::kTrustBundle);

  SECTION("a configuration already at a newer generation is left alone") {
    CHECK_FALSE(plan_ca_bundle_patch(webhook_config("", 5), bundle, 1));
  }
  SECTION("a configuration at the same generation and bundle needs nothing") {
    CHECK_FALSE(plan_ca_bundle_patch(webhook_config(bundle, 1), bundle, 1));
  }
  SECTION("a bundle change counts past every generation seen, the configurations' too") {
    SecretState behind = s;
    behind.data.erase(secret_keys::kTrustBundle);  // the bundle must be rebuilt
    const SecretPlan plan = plan_secret(config, behind, {webhook_config(bundle, 7)}, kStart + minutes(1));
    CHECK(plan.generation == 8);
  }
  SECTION("each change is guarded by a test, so a concurrent writer makes the patch fail") {
    const auto ops = plan_ca_bundle_patch(webhook_config("", 1), bundle, 2);
    REQUIRE(ops);
    size_t tests = 0;
    for (const auto &op : *ops) tests += op["op"] == "test";
    CHECK(tests == 3);  // each webhook's name, and the generation
    CHECK(ops->back()["op"] == "replace");
    CHECK(ops->back()["value"] == "2");
  }
  SECTION("a configuration without annotations gets them whole") {
    Json c = webhook_config("", 0);
    const auto ops = plan_ca_bundle_patch(c, bundle, 1);
    REQUIRE(ops);
    CHECK(ops->back()["path"] == "/metadata/annotations");
    CHECK(ops->back()["value"][kBundleGeneration] == "1");
  }
}

TEST_CASE("rotation: an unreadable Secret value is rebuilt", "[certs][rotation]") {
  const auto config = test_config();
  const SecretPlan first = plan_secret(config, SecretState{}, {}, kStart);
  Json secret = *first.secret;
  secret["data"][secret_keys::kServingKey] = "!!! not base64";
  const SecretState s = decode_secret(json_text(secret));
  CHECK(s.data.count(secret_keys::kServingKey) == 0);
  const SecretPlan repaired = plan_secret(config, s, {}, kStart);
  CHECK(has_note(repaired, "serving certificate issued"));
  CHECK(key_matches(
      {stored(repaired).value(secret_keys::kServingCert), stored(repaired).value(secret_keys::kServingKey)}));
  CHECK_THROWS_AS(decode_secret("[]"), std::invalid_argument);
}
