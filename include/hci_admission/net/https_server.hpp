// A small HTTPS/1.1 server: a few epoll loops over non-blocking OpenSSL.
//
// Why not cpp-httplib's server: it holds one blocked thread per keep-alive
// connection and polls between requests. Measured on the 2-core benchmark
// machine, it answers a 6 KB POST that does nothing at most 15.4k times a
// second with a 3.3 ms p99 at 16 connections, more than the whole budget
// of a webhook in kube-apiserver's request path. Here a connection is a
// state machine on one loop thread, and a request is handled where it is
// read, except what its handler hands on to a worker because it may block.
// What connections hold beyond their own allowance comes from one
// ByteBudget; a request it has no room for is not read until it has.
#pragma once

#include "hci_admission/net/byte_budget.hpp"
#include "hci_admission/net/tls.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hci_admission {

struct HttpReply {
  int status = 200;
  // Static text (a literal): a reply may be sent after its handler
  // returned. A string was an allocation every review ("application/json"
  // is one byte past the short-string buffer).
  std::string_view content_type = "application/json";
  std::string body;
  std::string allow;  // the Allow header of a 405
  // Set by a handler whose answer needs work that may block (a cluster
  // read): the server runs it on a worker thread and sends what it returns
  // instead of this reply. Everything else is answered on the loop.
  std::function<HttpReply()> finish_on_worker = {};
};

// What a handler sees of a request; views into the connection's buffer.
struct HttpRequestView {
  std::string_view method;
  std::string_view path;  // without the query string
  std::string_view content_type;
  std::string_view body;
  std::string_view query = {};  // after '?', undecoded
  // The client's verified certificate names (CN, then DNS SANs); null or
  // empty without one.
  const std::vector<std::string> *client_names = nullptr;
  // Bytes that may be read (not relied on) past the body's end: the rest
  // of the connection's buffer, so a parser that reads ahead needs no copy.
  size_t body_padding = 0;
};

struct HttpLimits {
  size_t max_header_bytes = 16u << 10;
  size_t max_body_bytes = 7u << 20;
};

// What the parser knows of the request at the start of a connection's input.
// The string views are set once the request is Complete and point into the
// buffer given to HttpRequestParser::parse; they hold until it changes.
struct HttpParse {
  enum class Status { Incomplete, Complete, Invalid };
  Status status = Status::Incomplete;
  int error_status = 0;  // Invalid: 400, 411, 413, 431, 501 or 505
  std::string error;

  bool headers_complete = false;
  std::string_view method;
  std::string_view path;
  std::string_view query;
  std::string_view content_type;
  bool keep_alive = true;
  bool expect_continue = false;
  bool chunked = false;
  bool has_length = false;      // headers_complete: a Content-Length was given
  uint64_t content_length = 0;  // its value
  size_t head_bytes = 0;        // headers_complete: where the body starts in the buffer
  std::string_view body_view;
  size_t consumed = 0;  // Complete: bytes at the start of the buffer this request took

  std::string_view body() const { return body_view; }
  // Bytes the whole request takes in the buffer, once known (headers
  // complete with a Content-Length); 0 otherwise.
  size_t known_size() const { return has_length ? head_bytes + static_cast<size_t>(content_length) : 0; }
};

// An HTTP/1.1 request parser that keeps its place across reads, so each byte
// of a request is examined a bounded number of times however the input is
// split (strictly: one Content-Length or chunked encoding, never both; no
// obsolete line folding). A chunked body is decoded in place: chunk data is
// moved down over the chunk framing and the buffer shrinks to what is left,
// so it never holds more than the body and one read's worth of framing.
class HttpRequestParser {
 public:
  explicit HttpRequestParser(HttpLimits limits = {}) : limits_(limits) {}

  // Parses on from where the last call stopped. `buffer` starts with the
  // request; between calls it may only have grown at its end. Once Complete
  // or Invalid, further calls return the same until reset().
  HttpParse::Status parse(std::string &buffer);
  const HttpParse &request() const { return p_; }
  // For the next request, after the caller removed request().consumed bytes.
  void reset() { *this = HttpRequestParser(limits_); }

 private:
  enum class Phase { Head, Body, ChunkSize, ChunkData, ChunkEnd, Trailer, Done };
  struct Span {
    size_t at = 0, size = 0;
  };
  HttpParse::Status fail(int status, std::string message);
  HttpParse::Status parse_head(std::string_view in, size_t header_end);
  HttpParse::Status parse_request_line(std::string_view in, std::string_view line);
  HttpParse::Status parse_header_field(std::string_view in, std::string_view field, bool http10,
                                       bool &content_type_seen);
  void read_connection_tokens(std::string_view value, bool http10);
  // Where `part` of `in` starts, and its size.
  static Span span_in(std::string_view in, std::string_view part) {
    return Span{static_cast<size_t>(part.data() - in.data()), part.size()};
  }
  HttpParse::Status parse_chunked(std::string &buffer);
  // One step of reading a chunked body: nothing to go on to the next
  // phase, or the status to return (waiting for more input, or done).
  using Step = std::optional<HttpParse::Status>;
  Step read_chunk_size(std::string &buffer);
  Step read_chunk_data(std::string &buffer);
  Step read_chunk_end(std::string &buffer);
  Step read_trailer(std::string &buffer);
  Step wait_for_more(std::string &buffer);
  void compact(std::string &buffer);
  HttpParse::Status complete(std::string &buffer, size_t consumed);

  HttpLimits limits_;
  HttpParse p_;
  Phase phase_ = Phase::Head;
  size_t start_ = 0;    // Head: after the empty lines allowed before a request
  size_t scanned_ = 0;  // where the last search for a line end stopped
  size_t raw_ = 0;      // chunked: the next byte of framing or data to read
  size_t decoded_ = 0;  // chunked: body bytes decoded so far, at head_bytes
  uint64_t chunk_left_ = 0;
  Span method_, target_, content_type_;
};

// Parses one request from the start of `buffer` in one go (tests, fuzzing).
HttpParse parse_http_request(std::string &buffer, const HttpLimits &limits);

// An error answer: {"error": message, "code": status} as JSON.
HttpReply error_reply(int status, const std::string &message);

// Appends the bytes of one response to `out`.
void append_http_reply(std::string &out, const HttpReply &reply, bool head, bool close);
inline std::string serialize_http_reply(const HttpReply &reply, bool head, bool close) {
  std::string out;
  append_http_reply(out, reply, head, close);
  return out;
}

struct HttpsServerConfig {
  std::string bind_address = "0.0.0.0";
  int port = 9443;
  size_t threads = 0;  // event loops; 0: one per core
  size_t max_connections = 1024;
  // Connections one client address may hold; 0: half of max_connections,
  // so that one flooding client leaves room for probes and the API server.
  size_t max_connections_per_client = 0;
  size_t max_requests_per_connection = 1000;
  HttpLimits limits;
  // Bytes all connections together may hold beyond their own allowance
  // (the header limit for a request, 16 KiB for an answer): bodies being
  // read and answers not yet written. See ByteBudget.
  size_t max_buffered_bytes = 32u << 20;
  // What one client address may hold of it; 0: half of max_buffered_bytes,
  // so that one address sending many bodies cannot keep others waiting.
  size_t max_buffered_bytes_per_client = 0;
  std::chrono::milliseconds idle_timeout{120000};
  std::chrono::milliseconds read_timeout{10000};  // for a whole request, first byte to last
  std::chrono::milliseconds write_timeout{10000};
  size_t max_blocking_workers = 64;
};

class HttpsServer {
 public:
  // Called on a loop thread, so it must not block: what may is returned
  // as HttpReply::finish_on_worker.
  using Handler = std::function<HttpReply(const HttpRequestView &)>;

  HttpsServer(HttpsServerConfig config, std::shared_ptr<TlsContext> tls, Handler handler);
  ~HttpsServer();
  HttpsServer(const HttpsServer &) = delete;
  HttpsServer &operator=(const HttpsServer &) = delete;

  // Binds and listens; throws std::runtime_error naming the address and why.
  void bind();
  // Serves until stop(), then answers what is in flight and returns.
  void serve();
  // Stops accepting; idle connections close, busy ones after their answer.
  void stop();
  bool listening() const { return listening_; }
  int port() const { return port_; }
  // What one connection may hold by itself, outside the budget: a request
  // up to the header limit, an answer up to 16 KiB.
  size_t request_allowance() const;
  static constexpr size_t kAnswerAllowance = 16u << 10;
  // Requests over this size may not use the last quarter of the budget.
  static constexpr size_t kOrdinaryRequest = 1u << 20;

 private:
  class Loop;
  friend class Loop;

  HttpsServerConfig config_;
  std::shared_ptr<TlsContext> tls_;
  Handler handler_;
  std::atomic<int64_t> last_trim_ms_{0};
  SslCtxPtr ssl_ctx_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> listening_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> connections_{0};
  std::atomic<size_t> loops_stopped_{0};  // the last loop to stop closes the listener
  std::unique_ptr<ByteBudget> budget_;
  std::atomic<size_t> held_back_{0};  // requests waiting for room in the budget
  // Called when budget comes back: wakes the loops while requests wait.
  void budget_returned();
  // Once a second, from the first loop.
  void give_memory_back();
  size_t memory_high_water_ = 0;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::unique_ptr<class WorkerPool> workers_;
  HttpReply handle_safely(const HttpRequestView &request) const;
  static HttpReply finish_safely(const std::function<HttpReply()> &finish);
  // After a long request finished on a worker: gives freed heap back to
  // the system, at most every 100 ms.
  void trim_heap_now_and_then();
  // Counts a connection against its client address; false when that
  // address is at max_connections_per_client.
  bool admit_client(const std::string &client);
  void release_client(const std::string &client);
  std::mutex clients_mutex_;
  std::unordered_map<std::string, size_t> per_client_;  // open connections by client address
  // Abuse and its handling, for /metrics.
  class Counter *refused_ = nullptr;             // at --max-connections
  class Counter *refused_per_client_ = nullptr;  // at --max-connections-per-client
  class Counter *evicted_ = nullptr;             // stale, closed to make room
  class Counter *handshake_failures_ = nullptr;  // incl. plain HTTP on the TLS port
  class Counter *timeouts_ = nullptr;            // read, write or handshake too slow
  class Counter *held_back_total_ = nullptr;     // requests that waited for room in the budget
  class Counter *too_large_ = nullptr;           // bodies the budget could never hold, 413 at once
};

}  // namespace hci_admission
