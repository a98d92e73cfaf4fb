// Loading serving certificates from a Kubernetes TLS Secret's layout, and
// putting a changed one into service without a restart.
#include "hci_admission/net/tls.hpp"
#include "hci_admission/certs/cert_issuer.hpp"
#include "hci_admission/common/files.hpp"
#include "hci_admission/obs/logging.hpp"
#include "tls_fixture.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace hci_admission;
using namespace std::chrono_literals;

TEST_CASE("a serving certificate loads with its names and dates", "[tls]") {
  test_support::TempDir dir;
  const auto now = std::chrono::system_clock::now();
  const PemPair ca = make_ca("test CA", std::chrono::hours(48), now);
  const PemPair leaf =
      issue_serving_certificate(ca, {"localhost", "hci.ns.svc"}, std::chrono::hours(24), now);
  test_support::write_pair(dir.path(), leaf.cert + ca.cert, leaf.key);
  const auto cert = ServingCertificate::load(dir.path());
  CHECK(cert->names() == std::vector<std::string>{"localhost", "hci.ns.svc"});
  CHECK_THAT(cert->subject(), Catch::Contains("localhost"));
  CHECK(cert->valid_at(now));
  CHECK_FALSE(cert->valid_at(now + std::chrono::hours(25)));
  CHECK(std::chrono::abs(cert->not_after() - (now + std::chrono::hours(24))) < 1s);
}

TEST_CASE("a certificate that cannot serve is refused, naming the file and the problem", "[tls]") {
  test_support::TempDir dir;
  const auto now = std::chrono::system_clock::now();
  const PemPair ca = make_ca("test CA", std::chrono::hours(48), now);
  const PemPair leaf = issue_serving_certificate(ca, {"localhost"}, std::chrono::hours(24), now);
  const PemPair other = issue_serving_certificate(ca, {"localhost"}, std::chrono::hours(24), now);

  CHECK_THROWS_WITH(ServingCertificate::load(""), Catch::Contains("--cert-dir"));
  CHECK_THROWS_WITH(ServingCertificate::load(dir.path()),
                    Catch::Contains("cannot read certificate " + dir.path()));
  test_support::write_pair(dir.path(), "junk", leaf.key);
  CHECK_THROWS_WITH(ServingCertificate::load(dir.path()), Catch::Contains("holds no PEM certificate"));
  test_support::write_pair(dir.path(), leaf.cert, "junk");
  CHECK_THROWS_WITH(ServingCertificate::load(dir.path()), Catch::Contains("holds no PEM private key"));
  test_support::write_pair(dir.path(), leaf.cert, other.key);
  CHECK_THROWS_WITH(ServingCertificate::load(dir.path()), Catch::Contains("does not match"));
  const PemPair old =
      issue_serving_certificate(ca, {"localhost"}, std::chrono::hours(1), now - std::chrono::hours(3));
  test_support::write_pair(dir.path(), old.cert, old.key);
  CHECK_THROWS_WITH(ServingCertificate::load(dir.path()), Catch::Contains("expired"));
  const PemPair later =
      issue_serving_certificate(ca, {"localhost"}, std::chrono::hours(1), now + std::chrono::hours(3));
  test_support::write_pair(dir.path(), later.cert, later.key);
  CHECK_THROWS_WITH(ServingCertificate::load(dir.path()), Catch::Contains("not valid before"));
}

TEST_CASE("a changed certificate is put into service; a half-written one is not", "[tls]") {
  setup_logging(LogFormat::Text, "off");
  test_support::TempDir dir;
  const auto now = std::chrono::system_clock::now();
  const PemPair ca = make_ca("test CA", std::chrono::hours(48), now);
  const PemPair first = issue_serving_certificate(ca, {"first"}, std::chrono::hours(24), now);
  const PemPair second = issue_serving_certificate(ca, {"second"}, std::chrono::hours(24), now);
  test_support::write_pair(dir.path(), first.cert, first.key);
  auto tls = std::make_shared<TlsContext>(ServingCertificate::load(dir.path()));
  CertificateReloader reloader(dir.path(), tls, 50ms);
  auto serving = [&] { return tls->current()->names().front(); };
  // Waits (at most 5 s) for `done`; the reloader checks every 50 ms.
  auto eventually = [](const std::function<bool()> &done) {
    for (int i = 0; i < 500 && !done(); ++i) std::this_thread::sleep_for(10ms);
    return done();
  };

  // A new certificate beside the old key: a Secret caught mid-update.
  write_file_atomically(dir.path() + "/tls.crt", second.cert, 0644);
  CHECK(eventually([&] { return reloader.errors() >= 1; }));
  CHECK(serving() == "first");
  CHECK(reloader.reloads() == 0);

  // Then its key: the pair is whole and goes into service.
  write_file_atomically(dir.path() + "/tls.key", second.key, 0600);
  CHECK(eventually([&] { return reloader.reloads() == 1; }));
  CHECK(serving() == "second");
}
