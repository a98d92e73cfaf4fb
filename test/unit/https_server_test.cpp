// The HTTPS server's connection handling, over real sockets and verified
// TLS: keep-alive, pipelining, the per-connection request limit, a client
// that never finishes its request, a client that does not trust the
// certificate, a client that closes its side right after its request,
// what dropped connections give back of the buffer budget, and stopping.
#include "hci_admission/net/https_server.hpp"
#include "hci_admission/certs/cert_issuer.hpp"
#include "hci_admission/obs/logging.hpp"
#include "hci_admission/obs/metrics.hpp"
#include "tls_fixture.hpp"

#include <catch2/catch.hpp>

#include <mutex>
#include <thread>

using namespace hci_admission;
using namespace std::chrono_literals;

namespace {

// A server on a free loopback port answering "<method> <path> <body>",
// serving from a thread of its own until destroyed.
class RunningServer {
 public:
  explicit RunningServer(HttpsServerConfig config = {}) {
    setup_logging(LogFormat::Text, "off");
    const auto now = std::chrono::system_clock::now();
    ca_ = make_ca("test CA", std::chrono::hours(48), now);
    const PemPair leaf = issue_serving_certificate(ca_, {"localhost"}, std::chrono::hours(24), now);
    test_support::write_pair(dir_.path(), leaf.cert, leaf.key);
    config.bind_address = "127.0.0.1";
    config.port = 0;
    config.threads = 1;
    server_ = std::make_unique<HttpsServer>(
        config, std::make_shared<TlsContext>(ServingCertificate::load(dir_.path())),
        [this](const HttpRequestView &r) {
          std::lock_guard<std::mutex> lock(mutex_);
          ++handled_;
          loop_thread_ = std::this_thread::get_id();
          HttpReply reply{200, "text/plain",
                          std::string(r.method) + " " + std::string(r.path) + " " + std::string(r.body), ""};
          // "/worker...": finished on a worker thread, which it names.
          if (r.path.rfind("/worker", 0) == 0) {
            const bool throws = r.path == "/worker-throws";
            reply.finish_on_worker = [this, body = reply.body, throws] {
              std::this_thread::sleep_for(20ms);  // the loop answers others meanwhile
              if (throws) throw std::runtime_error("worker failed");
              std::lock_guard<std::mutex> lock(mutex_);
              worker_threads_.push_back(std::this_thread::get_id());
              return HttpReply{200, "text/plain", "worker: " + body, ""};
            };
          }
          return reply;
        });
    server_->bind();
    thread_ = std::thread([this] { server_->serve(); });
  }
  ~RunningServer() {
    server_->stop();
    thread_.join();
  }
  RunningServer(const RunningServer &) = delete;
  RunningServer &operator=(const RunningServer &) = delete;

  int port() const { return server_->port(); }
  const std::string &ca() const { return ca_.cert; }
  size_t handled() {
    std::lock_guard<std::mutex> lock(mutex_);
    return handled_;
  }
  HttpsServer &server() { return *server_; }
  std::thread::id loop_thread() {
    std::lock_guard<std::mutex> lock(mutex_);
    return loop_thread_;
  }
  std::vector<std::thread::id> worker_threads() {
    std::lock_guard<std::mutex> lock(mutex_);
    return worker_threads_;
  }

 private:
  test_support::TempDir dir_;
  PemPair ca_;
  std::unique_ptr<HttpsServer> server_;
  std::thread thread_;
  std::mutex mutex_;
  size_t handled_ = 0;
  std::thread::id loop_thread_;
  std::vector<std::thread::id> worker_threads_;
};

std::string post(const std::string &path, const std::string &body) {
  return "POST " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// What the server holds of its buffer budget, from /metrics' gauge.
double buffered_bytes() {
  const std::string text = metrics().render();
  const std::string name = "\nhci_admission_buffered_bytes ";
  const size_t at = text.find(name);
  return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size()));
}

// Waits for the server's loop to get the budget to a state; gives up (and
// the CHECK after it fails) after ten seconds.
template <typename Condition>
bool eventually(Condition condition) {
  for (int i = 0; i < 1000 && !condition(); ++i) std::this_thread::sleep_for(10ms);
  return condition();
}

}  // namespace

TEST_CASE("https server: answers over verified TLS and keeps the connection", "[server]") {
  RunningServer s;
  test_support::TlsClient client(s.port(), s.ca());
  REQUIRE(client.connected());
  REQUIRE(client.send(post("/one", "a")));
  std::string answer = client.read_responses(1);
  CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 200 OK\r\n"));
  CHECK_THAT(answer, Catch::EndsWith("\r\n\r\nPOST /one a"));
  REQUIRE(client.send(post("/two", "bb")));
  CHECK_THAT(client.read_responses(1), Catch::EndsWith("POST /two bb"));
  CHECK(s.handled() == 2);
}

TEST_CASE("https server: pipelined requests are answered in order", "[server]") {
  RunningServer s;
  test_support::TlsClient client(s.port(), s.ca());
  REQUIRE(client.send(post("/1", "x") + post("/2", "y") + post("/3", "z")));
  const std::string answers = client.read_responses(3);
  const size_t one = answers.find("POST /1 x"), two = answers.find("POST /2 y"),
               three = answers.find("POST /3 z");
  REQUIRE(three != std::string::npos);
  CHECK(one < two);
  CHECK(two < three);
}

TEST_CASE("https server: what a handler hands on is finished on a worker, in order", "[server]") {
  RunningServer s;
  test_support::TlsClient client(s.port(), s.ca());
  test_support::TlsClient other(s.port(), s.ca());
  REQUIRE(
      client.send(post("/worker", "x") + post("/2", "y") + post("/worker-throws", "z") + post("/4", "w")));
  // Another connection is answered while the worker runs.
  REQUIRE(other.send(post("/meanwhile", "m")));
  CHECK_THAT(other.read_responses(1), Catch::EndsWith("POST /meanwhile m"));
  const std::string answers = client.read_responses(4);
  const size_t one = answers.find("worker: POST /worker x"), two = answers.find("POST /2 y"),
               three = answers.find("HTTP/1.1 500"), four = answers.find("POST /4 w");
  REQUIRE(four != std::string::npos);
  CHECK(one < two);
  CHECK(two < three);
  CHECK(three < four);
  CHECK_THAT(answers, Catch::Contains("worker failed"));
  const auto workers = s.worker_threads();
  REQUIRE(workers.size() == 1);
  CHECK(workers[0] != s.loop_thread());
}

TEST_CASE("https server: a connection closes after its last allowed request", "[server]") {
  HttpsServerConfig config;
  config.max_requests_per_connection = 2;
  RunningServer s(config);
  test_support::TlsClient client(s.port(), s.ca());
  REQUIRE(client.send(post("/1", "") + post("/2", "")));
  const std::string answers = client.read_responses(2);
  CHECK_THAT(answers, Catch::Contains("Connection: close"));
  CHECK(client.closed_by_server());
}

TEST_CASE("https server: a request that never finishes is cut off at the read timeout", "[server]") {
  HttpsServerConfig config;
  config.read_timeout = 300ms;
  RunningServer s(config);
  test_support::TlsClient client(s.port(), s.ca());
  REQUIRE(client.send("POST /slow HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"));
  CHECK(client.closed_by_server());  // blocks until then (Meson's timeout stops a hang)
  CHECK(s.handled() == 0);
}

TEST_CASE("https server: a client that does not trust the certificate is refused at the handshake",
          "[server]") {
  RunningServer s;
  const PemPair other = make_ca("other CA", std::chrono::hours(1));
  test_support::TlsClient stranger(s.port(), other.cert);
  CHECK_FALSE(stranger.connected());
  // ...and the server goes on serving those who do.
  test_support::TlsClient client(s.port(), s.ca());
  REQUIRE(client.send(post("/after", "")));
  CHECK_THAT(client.read_responses(1), Catch::Contains("POST /after"));
}

TEST_CASE("https server: bad requests get their status and do not reach the handler", "[server]") {
  RunningServer s;
  test_support::TlsClient client(s.port(), s.ca());
  REQUIRE(client.send("GET /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"));
  CHECK_THAT(client.read_responses(1), Catch::StartsWith("HTTP/1.1 501"));
  test_support::TlsClient second(s.port(), s.ca());
  REQUIRE(second.send("GET /x HTTP/2.0\r\n\r\n"));
  CHECK_THAT(second.read_responses(1), Catch::StartsWith("HTTP/1.1 505"));
  CHECK(s.handled() == 0);
}

TEST_CASE("https server: a request sent with close_notify right behind it is answered", "[server]") {
  RunningServer s;
  SECTION("one request") {
    test_support::TlsClient client(s.port(), s.ca());
    REQUIRE(client.send_and_close_notify(post("/last", "x")));
    const std::string answer = client.read_responses(1);
    CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 200 OK\r\n"));
    CHECK_THAT(answer, Catch::Contains("Connection: close"));
    CHECK_THAT(answer, Catch::EndsWith("POST /last x"));
    CHECK(client.closed_by_server());
  }
  SECTION("pipelined requests, one finished on a worker") {
    test_support::TlsClient client(s.port(), s.ca());
    REQUIRE(client.send_and_close_notify(post("/1", "a") + post("/worker", "b") + post("/3", "c")));
    const std::string answers = client.read_responses(3);
    const size_t one = answers.find("POST /1 a"), two = answers.find("worker: POST /worker b"),
                 three = answers.find("POST /3 c");
    REQUIRE(three != std::string::npos);
    CHECK(one < two);
    CHECK(two < three);
    CHECK(client.closed_by_server());
  }
  SECTION("a request cut short by it is not answered, and the connection closes") {
    test_support::TlsClient client(s.port(), s.ca());
    REQUIRE(client.send_and_close_notify(post("/whole", "1") +
                                         "POST /half HTTP/1.1\r\nContent-Length: 9\r\n\r\nab"));
    const std::string answers = client.read_responses(2);
    CHECK_THAT(answers, Catch::EndsWith("POST /whole 1"));
    CHECK(client.closed_by_server());
    CHECK(s.handled() == 1);
  }
}

TEST_CASE("https server: dropped connections give back all they held of the budget", "[server]") {
  RunningServer s;
  REQUIRE(buffered_bytes() == 0);
  {
    // A body being read holds all its room from the budget...
    test_support::TlsClient uploading(s.port(), s.ca());
    REQUIRE(uploading.send("POST /up HTTP/1.1\r\nContent-Length: 300000\r\n\r\n" + std::string(1000, 'a')));
    CHECK(eventually([] { return buffered_bytes() >= 280000; }));
    // ...and an answer its client does not read holds what it takes past
    // the answer allowance (the answer echoes the 1 MB body).
    test_support::TlsClient not_reading(s.port(), s.ca(), 4096);
    REQUIRE(not_reading.send(post("/echo", std::string(1000000, 'b'))));
    CHECK(eventually([] { return buffered_bytes() >= 280000 + 900000; }));
  }  // both close
  CHECK(eventually([] { return buffered_bytes() == 0; }));
}

TEST_CASE("https server: stop() ends serve() and closes the listener", "[server]") {
  auto s = std::make_unique<RunningServer>();
  const int port = s->port();
  CHECK(s->server().listening());
  s.reset();  // stop(), then serve() must return for the join
  const PemPair any = make_ca("any", std::chrono::hours(1));
  test_support::TlsClient late(port, any.cert);
  CHECK_FALSE(late.connected());
}
