#include "hci_admission/https_server.hpp"

#include <catch2/catch.hpp>

using namespace hci_admission;
using Status = HttpParse::Status;

namespace {
const HttpLimits kLimits{1024, 4096};

HttpParse parse(const std::string &in) { return parse_http_request(in, kLimits); }
}  // namespace

TEST_CASE("parses a request with a Content-Length body", "[http]") {
  const std::string in =
      "POST /mutate/x?timeout=10s HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
      "Content-Length: 5\r\n\r\nhelloGET";
  const HttpParse p = parse(in);
  REQUIRE(p.status == Status::Complete);
  CHECK(p.method == "POST");
  CHECK(p.path == "/mutate/x");
  CHECK(p.content_type == "application/json");
  CHECK(p.body() == "hello");
  CHECK(p.keep_alive);
  CHECK(p.consumed == in.size() - 3);  // the next request starts after
}

TEST_CASE("incomplete input asks for more", "[http]") {
  CHECK(parse("POST / HTTP/1.1\r\nContent-Le").status == Status::Incomplete);
  const HttpParse p = parse("POST / HTTP/1.1\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\nabc");
  CHECK(p.status == Status::Incomplete);
  CHECK(p.headers_complete);
  CHECK(p.expect_continue);
}

TEST_CASE("a request without a length has no body", "[http]") {
  const HttpParse p = parse("POST /x HTTP/1.1\r\nHost: a\r\n\r\n");
  REQUIRE(p.status == Status::Complete);
  CHECK(p.body().empty());
}

TEST_CASE("chunked bodies are put together", "[http]") {
  const std::string in =
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  const HttpParse p = parse(in);
  REQUIRE(p.status == Status::Complete);
  CHECK(p.body() == "hello world");
  CHECK(p.consumed == in.size());
  CHECK(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel").status == Status::Incomplete);
  const HttpParse trailer =
      parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX: y\r\n\r\n");
  REQUIRE(trailer.status == Status::Complete);
  CHECK(trailer.body() == "a");
}

TEST_CASE("keep-alive follows the version and Connection", "[http]") {
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
  CHECK_FALSE(parse("GET / HTTP/1.0\r\n\r\n").keep_alive);
  CHECK(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n").keep_alive);
}

TEST_CASE("refuses malformed and ambiguous requests", "[http]") {
  struct Case {
    const char *what;
    std::string in;
    int status;
  };
  const std::vector<Case> cases = {
      {"no target", "GET HTTP/1.1\r\n\r\n", 400},
      {"two spaces", "GET  / HTTP/1.1\r\n\r\n", 400},
      {"absolute target", "GET http://x/ HTTP/1.1\r\n\r\n", 400},
      {"unknown version", "GET / HTTP/2.0\r\n\r\n", 505},
      {"not HTTP", "GET / FTP/1.0\r\n\r\n", 400},
      {"bad method", "G(T / HTTP/1.1\r\n\r\n", 400},
      {"header without colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", 400},
      {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
      {"line folding", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400},
      {"bad length", "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
      {"negative length", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
      {"conflicting lengths", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
      {"length and chunked", "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
       400},
      {"gzip encoding", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"body over the limit", "POST / HTTP/1.1\r\nContent-Length: 4097\r\n\r\n", 413},
      {"chunked over the limit", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1001\r\n", 413},
      {"bad chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"chunk longer than said", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n",
       400},
      {"headers too large", "GET / HTTP/1.1\r\nX: " + std::string(2000, 'a'), 431},
      {"unknown expectation", "POST / HTTP/1.1\r\nExpect: magic\r\n\r\n", 417},
  };
  for (const auto &c : cases) {
    INFO(c.what);
    const HttpParse p = parse(c.in);
    CHECK(p.status == Status::Invalid);
    CHECK(p.error_status == c.status);
    CHECK_FALSE(p.error.empty());
  }
}

TEST_CASE("responses carry length, type and close", "[http]") {
  HttpReply r{405, "application/json", "{}", "POST"};
  CHECK(serialize_http_reply(r, false, true) ==
        "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
        "Allow: POST\r\nConnection: close\r\n\r\n{}");
  CHECK(serialize_http_reply({200, "text/plain", "ok", ""}, true, false) ==
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n");
}
