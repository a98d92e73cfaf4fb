#include "hci_admission/net/https_server.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <random>

using namespace hci_admission;
using Status = HttpParse::Status;

namespace {
const HttpLimits kLimits{1024, 4096};

// A parse with the buffer it points into; the buffer is on the heap so the
// views survive a move of the result.
struct Parsed : HttpParse {
  std::unique_ptr<std::string> buffer;
  std::string rest() const { return buffer->substr(consumed); }  // after a Complete request
};

Parsed parse(const std::string &in) {
  Parsed p;
  p.buffer = std::make_unique<std::string>(in);
  static_cast<HttpParse &>(p) = parse_http_request(*p.buffer, kLimits);
  return p;
}

// Feeds `in` in pieces that end at `cuts` (ascending), parsing after each.
Parsed parse_in_pieces(const std::string &in, const std::vector<size_t> &cuts) {
  Parsed p;
  p.buffer = std::make_unique<std::string>();
  p.buffer->reserve(in.size());  // appending never moves what the views point at
  HttpRequestParser parser(kLimits);
  size_t fed = 0;
  for (size_t cut : cuts) {
    p.buffer->append(in, fed, cut - fed);
    fed = cut;
    if (parser.parse(*p.buffer) != Status::Incomplete) break;
  }
  p.buffer->append(in, fed, std::string::npos);  // what follows the request
  parser.parse(*p.buffer);
  static_cast<HttpParse &>(p) = parser.request();
  return p;
}
}  // namespace

TEST_CASE("parses a request with a Content-Length body", "[http]") {
  const std::string in =
      "POST /mutate/x?timeout=10s HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
      "Content-Length: 5\r\n\r\nhelloGET";
  const Parsed p = parse(in);
  REQUIRE(p.status == Status::Complete);
  CHECK(p.method == "POST");
  CHECK(p.path == "/mutate/x");
  CHECK(p.content_type == "application/json");
  CHECK(p.body() == "hello");
  CHECK(p.keep_alive);
  CHECK(p.rest() == "GET");  // the next request starts after
}

TEST_CASE("incomplete input asks for more", "[http]") {
  CHECK(parse("POST / HTTP/1.1\r\nContent-Le").status == Status::Incomplete);
  const Parsed p = parse("POST / HTTP/1.1\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\nabc");
  CHECK(p.status == Status::Incomplete);
  CHECK(p.headers_complete);
  CHECK(p.expect_continue);
}

TEST_CASE("a request without a length has no body", "[http]") {
  const Parsed p = parse("POST /x HTTP/1.1\r\nHost: a\r\n\r\n");
  REQUIRE(p.status == Status::Complete);
  CHECK(p.body().empty());
}

TEST_CASE("chunked bodies are put together", "[http]") {
  const std::string in =
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  const Parsed p = parse(in);
  REQUIRE(p.status == Status::Complete);
  CHECK(p.body() == "hello world");
  CHECK(p.rest().empty());
  CHECK(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel").status == Status::Incomplete);
  const Parsed trailer =
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

namespace {
std::string repeat(const std::string &s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

struct Case {
  const char *what;
  std::string in;
  int status;
};
const std::vector<Case> kInvalid = {
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
    {"length and chunked", "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"gzip encoding", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
    {"body over the limit", "POST / HTTP/1.1\r\nContent-Length: 4097\r\n\r\n", 413},
    {"chunked over the limit", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1001\r\n", 413},
    {"bad chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
    {"chunk longer than said", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n",
     400},
    {"headers too large", "GET / HTTP/1.1\r\nX: " + std::string(2000, 'a'), 431},
    {"unknown expectation", "POST / HTTP/1.1\r\nExpect: magic\r\n\r\n", 417},
    {"empty lines count towards the header limit", repeat("\r\n", 520) + "GET / HTTP/1.1\r\n\r\n", 431},
    {"chunk line too long",
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + std::string(1100, 'x') +
         "\r\na\r\n0\r\n\r\n",
     400},
    {"bare CR in a header value", "POST / HTTP/1.1\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n", 400},
    {"bare LF in a header value", "POST / HTTP/1.1\r\nX-A: a\nb\r\nContent-Length: 0\r\n\r\n", 400},
    {"NUL in a header value", std::string("POST / HTTP/1.1\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n", 48),
     400},
    {"chunked trailer too large",
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + std::string(1100, 'a'), 431},
    {"chunked trailer too large, ended",
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + std::string(1100, 'a') + "\r\n\r\n",
     431},
};
}  // namespace

TEST_CASE("refuses malformed and ambiguous requests", "[http]") {
  for (const auto &c : kInvalid) {
    INFO(c.what);
    const Parsed p = parse(c.in);
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
  // Fields longer than the head's stack buffer, and one that fills it
  // part way, come out whole and in order.
  for (const size_t length : {100, 230, 256, 300, 5000}) {
    const std::string type(length, 't'), allow(length / 2, 'A'), body(length * 3, 'b');
    INFO("length " << length);
    CHECK(serialize_http_reply({413, type, body, allow}, false, true) ==
          "HTTP/1.1 413 Content Too Large\r\nContent-Type: " + type + "\r\nContent-Length: " +
              std::to_string(body.size()) + "\r\nAllow: " + allow + "\r\nConnection: close\r\n\r\n" + body);
  }
}

namespace {
// Requests the parser accepts, each followed by the start of the next one.
const std::vector<std::string> kValid = {
    "POST /mutate/x?timeout=10s HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
    "Content-Length: 5\r\n\r\nhelloGET",
    "\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n",
    "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
    "POST / HTTP/1.1\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n0123456789POST",
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGE",
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX: y\r\n\r\nPOST / HTTP/1.1",
    "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\nContent-Type: text/x\r\n\r\n" +
        repeat("3\r\nabc\r\n", 300) + "0\r\n\r\n\r\n",
    "POST / HTTP/1.1\r\nContent-Length: 4096\r\n\r\n" + std::string(4096, 'b'),
    "GET / HTTP/1.1\r\nX: " + std::string(1024 - 21, 'h') + "\r\n\r\n",  // at the header limit
};

void check_same(const Parsed &whole, const Parsed &split) {
  REQUIRE(split.status == whole.status);
  CHECK(split.error_status == whole.error_status);
  CHECK(split.error == whole.error);
  CHECK(split.headers_complete == whole.headers_complete);
  if (whole.status != Status::Complete) return;
  CHECK(split.method == whole.method);
  CHECK(split.path == whole.path);
  CHECK(split.query == whole.query);
  CHECK(split.content_type == whole.content_type);
  CHECK(split.body() == whole.body());
  CHECK(split.keep_alive == whole.keep_alive);
  CHECK(split.expect_continue == whole.expect_continue);
  CHECK(split.rest() == whole.rest());
}
}  // namespace

TEST_CASE("the request table gives the same result however its input is split", "[http]") {
  std::vector<std::string> inputs = kValid;
  for (const auto &c : kInvalid) inputs.push_back(c.in);
  std::mt19937 random(20261202);
  for (const auto &in : inputs) {
    INFO(in.substr(0, 80));
    const Parsed whole = parse(in);
    for (size_t at = 1; at < in.size(); ++at) {
      INFO("split at " << at);
      check_same(whole, parse_in_pieces(in, {at, in.size()}));
    }
    for (int round = 0; round < 50; ++round) {
      std::vector<size_t> cuts;
      for (size_t at = 0; at < in.size();) {
        at = std::min(in.size(), at + 1 + random() % 40);
        cuts.push_back(at);
      }
      check_same(whole, parse_in_pieces(in, cuts));
    }
    // Byte by byte.
    std::vector<size_t> every(in.size());
    for (size_t i = 0; i < in.size(); ++i) every[i] = i + 1;
    check_same(whole, parse_in_pieces(in, every));
  }
}

TEST_CASE("a chunked body is decoded in place and the framing given back", "[http]") {
  std::string buffer = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  const size_t head = buffer.size();
  HttpRequestParser parser(kLimits);
  for (int i = 0; i < 1000; ++i) {
    buffer += "1;x=y\r\nz\r\n";
    REQUIRE(parser.parse(buffer) == Status::Incomplete);
    // Only the body decoded so far stays: 1 byte a chunk, not 12.
    CHECK(buffer.size() == head + static_cast<size_t>(i) + 1);
  }
  buffer += "0\r\n\r\nNEXT";
  REQUIRE(parser.parse(buffer) == Status::Complete);
  CHECK(parser.request().body() == std::string(1000, 'z'));
  CHECK(buffer.substr(parser.request().consumed) == "NEXT");
}

TEST_CASE("the parser reports the size a request will take once its headers are in", "[http]") {
  std::string buffer = "POST / HTTP/1.1\r\nContent-Length: 3000\r\n\r\nab";
  HttpRequestParser parser(kLimits);
  REQUIRE(parser.parse(buffer) == Status::Incomplete);
  CHECK(parser.request().headers_complete);
  CHECK(parser.request().known_size() == buffer.size() - 2 + 3000);
  std::string chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab";
  HttpRequestParser second(kLimits);
  REQUIRE(second.parse(chunked) == Status::Incomplete);
  CHECK(second.request().known_size() == 0);
}
