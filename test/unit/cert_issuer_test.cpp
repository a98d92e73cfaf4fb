#include "hci_admission/certs/cert_issuer.hpp"
#include "hci_admission/app/cli.hpp"
#include "hci_admission/certs/self_managed_certs.hpp"
#include "registry.hpp"

#include <catch2/catch.hpp>

using namespace hci_admission;
using std::chrono::hours;
using std::chrono::seconds;

TEST_CASE("a CA signs serving certificates that name the service", "[certs]") {
  const auto now = std::chrono::system_clock::now();
  const PemPair ca = make_ca("test CA", hours(24 * 365), now);
  const CertificateFacts ca_facts = inspect_certificate(ca.cert);
  CHECK(ca_facts.is_ca);
  CHECK(ca_facts.common_name == "test CA");
  CHECK(key_matches(ca));
  CHECK(signed_by(ca.cert, ca.cert));  // self-signed

  const PemPair leaf =
      issue_serving_certificate(ca, {"svc.ns.svc", "svc.ns.svc.cluster.local"}, hours(24), now);
  const CertificateFacts f = inspect_certificate(leaf.cert);
  CHECK_FALSE(f.is_ca);
  CHECK(f.dns_names == std::vector<std::string>{"svc.ns.svc", "svc.ns.svc.cluster.local"});
  CHECK(f.common_name == "svc.ns.svc");
  CHECK(key_matches(leaf));
  CHECK(signed_by(leaf.cert, ca.cert));
  CHECK(std::chrono::abs(f.not_after - (now + hours(24))) < seconds(1));  // whole seconds in X.509
  CHECK(f.not_before < now);  // backdated for clocks that are behind

  const PemPair other = make_ca("other CA", hours(24), now);
  CHECK_FALSE(signed_by(leaf.cert, other.cert));
  CHECK_FALSE(key_matches({leaf.cert, other.key}));
  CHECK(inspect_certificate(other.cert).sha256 != ca_facts.sha256);
}

TEST_CASE("a serving certificate never outlives its CA", "[certs]") {
  const auto now = std::chrono::system_clock::now();
  const PemPair ca = make_ca("short CA", seconds(60), now);
  const PemPair leaf = issue_serving_certificate(ca, {"localhost"}, hours(24), now);
  CHECK(inspect_certificate(leaf.cert).not_after == inspect_certificate(ca.cert).not_after);
  CHECK(signed_by(leaf.cert, ca.cert));
}

TEST_CASE("short validities are backdated by a tenth, long ones by five minutes", "[certs]") {
  const auto now = std::chrono::system_clock::now();
  const auto short_ca = inspect_certificate(make_ca("a", seconds(30), now).cert);
  CHECK(std::chrono::duration_cast<seconds>(short_ca.not_after - short_ca.not_before).count() == 33);
  const auto long_ca = inspect_certificate(make_ca("b", hours(24), now).cert);
  CHECK(std::chrono::duration_cast<seconds>(long_ca.not_after - long_ca.not_before).count() ==
        24 * 3600 + 300);
  CHECK(short_ca.remaining_fraction(now + seconds(40)) == 0);
  CHECK(short_ca.remaining_fraction(now - seconds(10)) == 1);
  CHECK(short_ca.remaining_fraction(now + seconds(19)) == Approx(11.0 / 33).margin(0.04));
}

TEST_CASE("PEM bundles split into their certificates", "[certs]") {
  const PemPair a = make_ca("a", hours(1));
  const PemPair b = make_ca("b", hours(1));
  const auto parts = split_pem_bundle(a.cert + b.cert);
  REQUIRE(parts.size() == 2);
  CHECK(inspect_certificate(parts[0]).common_name == "a");
  CHECK(inspect_certificate(parts[1]).common_name == "b");
  CHECK(split_pem_bundle("").empty());
  CHECK_THROWS_AS(split_pem_bundle(a.cert.substr(0, a.cert.size() / 2)), CertificateError);
  CHECK_THROWS_AS(inspect_certificate("not PEM"), CertificateError);
  CHECK_THROWS_AS(issue_serving_certificate({"x", "y"}, {"n"}, hours(1)), CertificateError);
  CHECK_THROWS_AS(issue_serving_certificate(a, {}, hours(1)), CertificateError);
}

TEST_CASE("self-managed certificate flags", "[certs][cli]") {
  auto parse = [](std::vector<std::string> args) {
    return parse_options(args, webhooks::builtin_policies());
  };
  const Options o = parse({"--cert-dir", "/c", "--self-managed-certs", "ns1/tls", "--self-managed-webhooks",
                           "validating/v1,mutating/m1", "--self-managed-trust-delay", "30s"});
  REQUIRE(o.self_managed);
  CHECK(o.self_managed_certs.secret_namespace == "ns1");
  CHECK(o.self_managed_certs.secret_name == "tls");
  CHECK(o.self_managed_certs.dns_names ==
        std::vector<std::string>{"hci-admission.ns1.svc", "hci-admission.ns1.svc.cluster.local"});
  REQUIRE(o.self_managed_certs.webhook_configs.size() == 2);
  CHECK(o.self_managed_certs.webhook_configs[0].api_path() ==
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/v1");
  CHECK(o.self_managed_certs.webhook_configs[1].mutating);
  CHECK(o.self_managed_certs.trust_delay == seconds(30));
  CHECK(o.self_managed_certs.ca_validity == hours(87600));

  auto error_of = [&](std::vector<std::string> args) -> std::string {
    try {
      parse(std::move(args));
    } catch (const UsageError &e) {
      return e.what();
    }
    return "no error";
  };
  CHECK_THAT(error_of({"--self-managed-certs", "tls"}), Catch::Contains("NAMESPACE/NAME"));
  CHECK_THAT(error_of({"--self-managed-certs", "a/b/c"}), Catch::Contains("NAMESPACE/NAME"));
  CHECK_THAT(error_of({"--self-managed-certs", "a/b", "--self-managed-webhooks", "webhook/x"}),
             Catch::Contains("validating/NAME or mutating/NAME"));
  CHECK_THAT(error_of({"--self-managed-trust-delay", "5s"}), Catch::Contains("need --self-managed-certs"));
  CHECK_THAT(error_of({"--self-managed-certs", "a/b", "--self-managed-cert-validity", "2h",
                       "--self-managed-ca-validity", "1h"}),
             Catch::Contains("cannot be longer"));
  CHECK_THAT(error_of({"--self-managed-certs", "a/b", "--self-managed-ca-validity", "60s",
                       "--self-managed-cert-validity", "20s", "--self-managed-trust-delay", "20s"}),
             Catch::Contains("a sixth"));
  // The boundary: a sixth exactly still leaves the renewal margin's other half.
  CHECK(error_of({"--self-managed-certs", "a/b", "--self-managed-ca-validity", "60s",
                  "--self-managed-cert-validity", "20s", "--self-managed-trust-delay", "10s"}) == "no error");
  CHECK_THAT(error_of({"--self-managed-certs", "a/b", "--self-managed-ca-validity", "60s",
                       "--self-managed-cert-validity", "20s", "--self-managed-trust-delay", "11s"}),
             Catch::Contains("a sixth"));
}
