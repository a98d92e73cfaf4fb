#include "hci_admission/net/https_server.hpp"

#include "hci_admission/common/worker_pool.hpp"
#include "hci_admission/obs/logging.hpp"
#include "hci_admission/obs/metrics.hpp"

#include <openssl/err.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <malloc.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

namespace hci_admission {
namespace {

// SSL_get_error reads the thread's error queue, so it must be empty before
// each SSL call. ERR_clear_error on an empty queue still walks all of its
// slots: three calls were 2.5k of 135k instructions a review (callgrind),
// more than the HTTP parsing.
void clear_openssl_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

using Clock = std::chrono::steady_clock;

// How long a connection that was told to close may keep sending before it
// is cut off; reading meanwhile keeps our last answer from being lost to a
// reset (RFC 9112 9.6).
constexpr std::chrono::milliseconds kLingerTime{2000};
constexpr size_t kReadChunk = 16384;
// Kept spare past a request's bytes in the input buffer, and offered to the
// handler as HttpRequestView::body_padding: a JSON parser that reads ahead
// (simdjson reads 64 bytes past the end) then reads the body in place.
constexpr size_t kSpareAfterRequest = 64;

// The kernel's buffers for each connection, set on the listener so that
// accepted sockets have them from the first byte (the window scale is
// chosen at the handshake). The kernel doubles the values: a connection's
// receive queue holds at most 32 KiB and its send queue 8 KiB, charged to
// the pod's memory cgroup like RSS (README, "Memory under hostile load").
// Left to the kernel they grow (receive up to tcp_rmem's maximum, 32 MiB
// here), and a held-back request keeps its socket's queue full: 61
// held-back sockets queued 9.1 MiB, 1,000 hostile connections 96 MiB (26
// MiB so). A 7 MiB review over loopback on the 2-core machine, keep-alive,
// least of 30 (a 1 MB one in brackets), and what a held-back socket then
// queued: kernel default 33-35 ms (4.3-4.5), 150 KiB; 8 KiB 66-69 ms
// (8.8-9.0), 16 KiB; 16 KiB 42-46 ms (6.6-7.3), 28 KiB; 32 KiB 39-41 ms
// (5.4-5.6), 51 KiB. 16 KiB is the knee. A 6 KB review fits in one window
// either way (0.1 ms). The send buffer only holds our answers, a few KiB
// (/metrics 15 KB).
constexpr int kSocketReceiveBuffer = 16 << 10;
constexpr int kSocketSendBuffer = 4 << 10;

struct Connection {
  enum class State { Handshake, Open, Offloaded, Lingering };
  int fd = -1;
  uint64_t id = 0;
  SslPtr ssl;
  State state = State::Handshake;
  uint32_t interest = 0;  // epoll events registered
  bool registered = false;
  bool tls_checked = false;  // the first byte was looked at
  std::string in;            // the request being read, and any pipelined after it
  HttpRequestParser parser;
  // Bytes `in` may hold: the server's request allowance plus `taken` from
  // the budget (in the `taken_large` share). Reads stop there.
  size_t reserved = 0;
  size_t taken = 0;
  bool taken_large = false;
  bool held_back = false;    // waiting for room in the budget; not read meanwhile
  bool input_ended = false;  // close_notify came: what was sent before is answered, then it closes
  bool peer_gone = false;    // Offloaded: the client went away; dropped when the worker is done
  size_t answer_taken = 0;   // taken for `out` beyond the answer allowance
  std::string out;
  size_t out_sent = 0;
  bool close_after_write = false;
  bool continue_sent = false;
  size_t requests = 0;
  Clock::time_point accepted;
  Clock::time_point last_activity;
  Clock::time_point request_started;  // first byte of the request being read
  Clock::time_point linger_until;
  size_t pending_consumed = 0;  // bytes of `in` the offloaded request took
  bool pending_head = false;
  bool pending_keep_alive = true;
  std::vector<std::string> client_names;  // of a verified client certificate
  std::string client;                     // its address, for --max-connections-per-client
};

// A request whose answer a worker finishes. The connection's input moves
// with it, so the request's bytes stay counted against the connection
// while the worker runs; they come back with the answer.
struct OffloadedRequest {
  int fd;
  uint64_t id;
  std::string bytes;
  std::function<HttpReply()> finish;
};

// CPUs this process may really use: its affinity mask, capped by a cgroup
// CPU limit (a pod with limits.cpu: 1 on a 64-core node gets one loop).
size_t usable_cpus() {
  size_t cpus = std::max(1u, std::thread::hardware_concurrency());
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = std::max(1, CPU_COUNT(&set));
  double quota = -1, period = -1;
  if (FILE *f = std::fopen("/sys/fs/cgroup/cpu.max", "r")) {  // cgroup v2: "max 100000" or "50000 100000"
    char q[32] = {0};
    if (std::fscanf(f, "%31s %lf", q, &period) == 2 && std::strcmp(q, "max") != 0) quota = std::atof(q);
    std::fclose(f);
  } else if (FILE *fq = std::fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r")) {  // cgroup v1
    if (std::fscanf(fq, "%lf", &quota) != 1) quota = -1;
    std::fclose(fq);
    if (FILE *fp = std::fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r")) {
      if (std::fscanf(fp, "%lf", &period) != 1) period = -1;
      std::fclose(fp);
    }
  }
  if (quota > 0 && period > 0)
    cpus = std::min(cpus, static_cast<size_t>(std::max(1.0, std::ceil(quota / period))));
  return cpus;
}

std::string client_address(const sockaddr_storage &addr) {
  char host[INET6_ADDRSTRLEN] = {0};
  if (addr.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6 *>(&addr)->sin6_addr, host, sizeof host);
  } else if (addr.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in *>(&addr)->sin_addr, host, sizeof host);
  }
  return host;
}

}  // namespace

// One event loop: its own epoll set and connections, touched only by its
// thread; other threads reach it through the inbox and the eventfd.
class HttpsServer::Loop {
 public:
  explicit Loop(HttpsServer &server) : server_(server) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epfd_ < 0 || wake_fd_ < 0) throw std::runtime_error(std::string("epoll: ") + std::strerror(errno));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_fd_;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  }
  ~Loop() {
    while (!conns_.empty()) drop(*conns_.begin()->second);
    if (epfd_ >= 0) close(epfd_);
    if (wake_fd_ >= 0) close(wake_fd_);
  }

  void watch_listener(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.fd = fd;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    listen_fd_ = fd;
  }

  size_t load() const { return load_; }

  // From any thread.
  void adopt(int fd, std::string client) {
    {
      std::lock_guard<std::mutex> lock(inbox_mutex_);
      new_fds_.emplace_back(fd, std::move(client));
    }
    wake();
  }
  void complete(int fd, uint64_t id, HttpReply reply, std::string bytes) {
    {
      std::lock_guard<std::mutex> lock(inbox_mutex_);
      done_.push_back({fd, id, std::move(reply), std::move(bytes)});
    }
    wake();
  }
  // Room came back to the budget: held-back requests try again.
  void retry_soon() {
    retry_ = true;
    wake();
  }
  void wake() {
    const uint64_t one = 1;
    [[maybe_unused]] auto n = write(wake_fd_, &one, sizeof one);
  }

  void run() {
    epoll_event events[128];
    Clock::time_point next_sweep = Clock::now() + std::chrono::seconds(1);
    for (;;) {
      const int n = epoll_wait(epfd_, events, 128, 250);
      const auto now = Clock::now();
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == wake_fd_) {
          uint64_t v;
          [[maybe_unused]] auto r = read(wake_fd_, &v, sizeof v);
          take_inbox(now);
          if (retry_.exchange(false)) retry_held(now);
        } else if (fd == listen_fd_) {
          accept_some(now);
        } else {
          auto it = conns_.find(fd);
          if (it != conns_.end()) on_event(*it->second, events[i].events, now);
        }
      }
      if (server_.stopping_) {
        if (!stop_seen_) begin_stop();
        if (conns_.empty()) return;
      }
      if (now >= next_sweep) {
        retry_held(now);
        sweep(now);
        if (this == server_.loops_.front().get()) server_.give_memory_back();
        next_sweep = now + std::chrono::seconds(1);
      }
    }
  }

 private:
  struct Done {
    int fd;
    uint64_t id;
    HttpReply reply;
    std::string bytes;  // the connection's input, handed back
  };

  void accept_some(Clock::time_point now) {
    if (server_.stopping_) return;
    for (int i = 0; i < 8; ++i) {
      sockaddr_storage addr{};
      socklen_t len = sizeof addr;
      const int fd =
          accept4(listen_fd_, reinterpret_cast<sockaddr *>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or another loop took it
      std::string client = client_address(addr);
      // A client at its own limit makes room from its own stale connections.
      if (!server_.admit_client(client) && !(evict_stale(now, &client) && server_.admit_client(client))) {
        close(fd);
        server_.refused_per_client_->inc();
        LogLine("connection refused: at --max-connections-per-client").field("client", client).debug();
        continue;
      }
      if (server_.connections_ >= server_.config_.max_connections && !evict_stale(now)) {
        server_.release_client(client);
        close(fd);
        server_.refused_->inc();
        LogLine("connection refused: at --max-connections")
            .field("limit", server_.config_.max_connections)
            .debug();
        continue;
      }
      ++server_.connections_;
      // Hand it to the loop with the fewest connections.
      Loop *target = this;
      for (auto &loop : server_.loops_) {
        if (loop->load_ < target->load_) target = loop.get();
      }
      ++target->load_;
      if (target == this) {
        open(fd, now, std::move(client));
      } else {
        target->adopt(fd, std::move(client));
      }
    }
  }

  void take_inbox(Clock::time_point now) {
    std::vector<std::pair<int, std::string>> fds;
    std::vector<Done> done;
    {
      std::lock_guard<std::mutex> lock(inbox_mutex_);
      fds.swap(new_fds_);
      done.swap(done_);
    }
    for (auto &[fd, client] : fds) open(fd, now, std::move(client));
    for (auto &d : done) {
      auto it = conns_.find(d.fd);
      if (it == conns_.end() || it->second->id != d.id) continue;
      Connection &c = *it->second;
      c.state = Connection::State::Open;
      c.in = std::move(d.bytes);
      if (c.peer_gone) {
        drop(c);
        continue;
      }
      finish_request(c, d.reply, c.pending_consumed, c.pending_head, c.pending_keep_alive, now);
      // Reading on, not just parsing: OpenSSL may hold bytes epoll cannot see.
      if (conns_.count(d.fd) && c.state == Connection::State::Open) read_input(c, now);
    }
  }

  // At the connection limit: closes the stalest connection of this loop
  // that is doing nothing useful, so that a flood of silent or slow
  // connections cannot lock out probes and the API server. In order: a
  // handshake not finished after a second, a request still arriving after
  // a second, the longest-idle keep-alive connection.
  bool evict_stale(Clock::time_point now, const std::string *only_client = nullptr) {
    constexpr auto kGrace = std::chrono::seconds(1);
    Connection *victim = nullptr;
    int victim_rank = 3;
    Clock::time_point victim_since{};
    for (auto &entry : conns_) {
      Connection &c = *entry.second;
      if (only_client != nullptr && c.client != *only_client) continue;
      int rank = 3;
      Clock::time_point since{};
      if (c.state == Connection::State::Handshake && now - c.accepted > kGrace) {
        rank = 0;
        since = c.accepted;
      } else if (c.state == Connection::State::Open && c.out_sent >= c.out.size()) {
        if (!c.in.empty() && now - c.request_started > kGrace) {
          rank = 1;
          since = c.request_started;
        } else if (c.in.empty()) {
          rank = 2;
          since = c.last_activity;
        }
      }
      if (rank < victim_rank || (rank == victim_rank && rank < 3 && since < victim_since)) {
        victim = &c;
        victim_rank = rank;
        victim_since = since;
      }
    }
    if (victim == nullptr) return false;
    LogLine(only_client ? "connection closed to make room: at --max-connections-per-client"
                        : "connection closed to make room: at --max-connections")
        .field("client", victim->client)
        .field("reason", victim_rank == 0   ? "slow handshake"
                         : victim_rank == 1 ? "slow request"
                                            : "idle")
        .debug();
    server_.evicted_->inc();
    if (victim->state == Connection::State::Open) SSL_shutdown(victim->ssl.get());
    drop(*victim);
    return true;
  }

  void open(int fd, Clock::time_point now, std::string client) {
    int yes = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    SslPtr ssl(SSL_new(server_.ssl_ctx_.get()));
    if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
      server_.release_client(client);
      close(fd);
      --load_;
      --server_.connections_;
      return;
    }
    SSL_set_accept_state(ssl.get());
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->id = next_id_++;
    c->ssl = std::move(ssl);
    c->accepted = c->last_activity = now;
    c->client = std::move(client);
    c->parser = HttpRequestParser(server_.config_.limits);
    c->reserved = allowance_;
    Connection &ref = *c;
    conns_[fd] = std::move(c);
    set_interest(ref, EPOLLIN);
    handshake(ref, now);
  }

  void set_interest(Connection &c, uint32_t events) {
    if (c.registered && c.interest == events) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = c.fd;
    epoll_ctl(epfd_, c.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c.fd, &ev);
    c.registered = true;
    c.interest = events;
  }

  void on_event(Connection &c, uint32_t events, Clock::time_point now) {
    if (c.state == Connection::State::Offloaded) {
      // A worker still reads this connection's input: it keeps its share of
      // the budget, and its place under --max-connections, until the answer.
      if (events & (EPOLLERR | EPOLLHUP)) {
        epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
        c.registered = false;
        c.peer_gone = true;
      }
      return;
    }
    if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
      drop(c);
      return;
    }
    if ((events & EPOLLRDHUP) && c.held_back && c.state == Connection::State::Open) {
      on_held_back_hangup(c);
      return;
    }
    switch (c.state) {
      case Connection::State::Handshake:
        handshake(c, now);
        return;
      case Connection::State::Offloaded:
        return;
      case Connection::State::Lingering:
        linger(c, now);
        return;
      case Connection::State::Open:
        break;
    }
    if ((events & EPOLLOUT) && c.out_sent < c.out.size()) {
      if (!flush(c, now)) return;
      // Requests that came in while the answer was stuck are waiting in
      // the buffer or in OpenSSL; no further input may come to wake them.
      if (c.out_sent >= c.out.size() && !(events & EPOLLIN)) {
        if (!c.held_back) read_input(c, now);
        return;
      }
    }
    if ((events & EPOLLIN) && !c.held_back) read_input(c, now);
  }

  void handshake(Connection &c, Clock::time_point now) {
    if (!c.tls_checked) {
      // A TLS connection starts with a handshake record (0x16). Plain HTTP
      // gets a plain answer, as Go's servers give, instead of silence.
      unsigned char first = 0;
      const ssize_t n = recv(c.fd, &first, 1, MSG_PEEK);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) {
        drop(c);
        return;
      }
      c.tls_checked = true;
      if (first != 0x16) {
        static const char kPlain[] =
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            "Content-Length: 48\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
        [[maybe_unused]] auto w = ::send(c.fd, kPlain, sizeof kPlain - 1, MSG_NOSIGNAL);
        LogLine("plain HTTP on the TLS port").debug();
        server_.handshake_failures_->inc();
        // Read what the client sent before closing: unread input would turn
        // the close into a reset that destroys the answer.
        shutdown(c.fd, SHUT_WR);
        c.state = Connection::State::Lingering;
        c.linger_until = now + kLingerTime;
        set_interest(c, EPOLLIN);
        linger(c, now);
        return;
      }
    }
    clear_openssl_errors();
    const int r = SSL_do_handshake(c.ssl.get());
    if (r == 1) {
      c.client_names = verified_client_names(c.ssl.get());
      c.state = Connection::State::Open;
      c.last_activity = now;
      set_interest(c, EPOLLIN);
      read_input(c, now);  // data may have come with the handshake
      return;
    }
    switch (SSL_get_error(c.ssl.get(), r)) {
      case SSL_ERROR_WANT_READ:
        set_interest(c, EPOLLIN);
        return;
      case SSL_ERROR_WANT_WRITE:
        set_interest(c, EPOLLIN | EPOLLOUT);
        return;
      default:
        LogLine("TLS handshake failed").field("error", ssl_error()).debug();
        server_.handshake_failures_->inc();
        drop(c);
    }
  }

  // Without an OpenSSL error, the system's (a reset connection).
  static std::string ssl_error() { return take_openssl_error(std::strerror(errno)); }

  enum class ReadEnd { Drained, Full, Ended, Closed };

  // Reads what the client sent, up to the connection's reservation.
  ReadEnd read_some(Connection &c, Clock::time_point now) {
    char buf[kReadChunk];
    for (;;) {
      const size_t room = c.reserved > c.in.size() ? c.reserved - c.in.size() : 0;
      if (room == 0) return ReadEnd::Full;
      clear_openssl_errors();
      const int n = SSL_read(c.ssl.get(), buf, static_cast<int>(std::min(room, sizeof buf)));
      if (n > 0) {
        if (c.in.empty()) c.request_started = now;
        // Capacity grows as a string's does, but never past the reservation.
        const size_t size = c.in.size() + static_cast<size_t>(n);
        if (c.in.capacity() < size) {
          c.in.reserve(std::min(c.reserved, std::max(size, 2 * c.in.capacity())) + kSpareAfterRequest);
        }
        c.in.append(buf, static_cast<size_t>(n));
        c.last_activity = now;
        // With read-ahead OpenSSL may hold bytes it has read but not yet
        // decrypted; epoll cannot see those, so read on until it holds
        // none. Stopping then saves a read that would only say EAGAIN.
        if (!SSL_has_pending(c.ssl.get())) return ReadEnd::Drained;
        continue;
      }
      const int err = SSL_get_error(c.ssl.get(), n);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return ReadEnd::Drained;
      // close_notify: the client sends nothing more, but it may be waiting
      // for the answers to what it sent before, which may have come in the
      // same read (a client that writes its request and closes its side).
      if (err == SSL_ERROR_ZERO_RETURN) {
        c.input_ended = true;
        return ReadEnd::Ended;
      }
      // EOF without close_notify, or broken.
      drop(c);
      return ReadEnd::Closed;
    }
  }

  void read_input(Connection &c, Clock::time_point now) {
    const int fd = c.fd;
    for (;;) {
      const ReadEnd end = c.input_ended ? ReadEnd::Ended : read_some(c, now);
      if (end == ReadEnd::Closed) return;
      process_input(c, now);
      if (!conns_.count(fd) || c.state != Connection::State::Open) return;
      if (end == ReadEnd::Ended) {
        end_input(c, now);
        return;
      }
      if (c.held_back) return;
      if (c.out_sent < c.out.size()) {
        // An answer is stuck: read nothing more until it is written
        // (level-triggered EPOLLIN would otherwise spin on a full buffer).
        if (end == ReadEnd::Full) set_interest(c, EPOLLOUT);
        return;
      }
      if (end == ReadEnd::Drained) return;
      // Full: answering made room, or the request needs more than it has.
      if (c.in.size() >= c.reserved && !reserve_for(c, now)) return;
    }
  }

  // After close_notify, once process_input has answered what it could:
  // with an answer still being written, the rest waits for it (read_input
  // is called again once it is out); otherwise nothing more can come, so
  // what is left can never be a whole request, and the connection closes.
  void end_input(Connection &c, Clock::time_point now) {
    if (c.out_sent < c.out.size()) {
      set_interest(c, EPOLLOUT);
      return;
    }
    release_hold(c);
    start_linger(c, now);
  }

  // Answers every complete request in the input, one at a time.
  void process_input(Connection &c, Clock::time_point now) {
    const int fd = c.fd;
    while (c.state == Connection::State::Open && c.out_sent >= c.out.size() && !c.in.empty() &&
           !c.held_back) {
      const HttpParse::Status status = c.parser.parse(c.in);
      const HttpParse &p = c.parser.request();
      if (status == HttpParse::Status::Invalid) {
        send_reply(c, error_reply(p.error_status, p.error), false, true, now);
        return;
      }
      if (status == HttpParse::Status::Incomplete) {
        // Room for the whole body is taken as soon as its size is known,
        // before 100 Continue invites it.
        if (p.known_size() > c.reserved && !reserve_for(c, now)) return;
        if (p.headers_complete && p.expect_continue && !c.continue_sent) {
          c.continue_sent = true;
          send(c, "HTTP/1.1 100 Continue\r\n\r\n", false, now);
        }
        return;
      }
      c.continue_sent = false;
      const bool head = p.method == "HEAD";
      const std::string_view body = p.body();
      // The buffer's capacity past the body (a pipelined request's bytes
      // or none at all) may be read, never relied on.
      const size_t body_padding =
          body.empty() ? 0 : static_cast<size_t>(c.in.data() + c.in.capacity() - (body.data() + body.size()));
      HttpReply reply = server_.handle_safely(
          {p.method, p.path, p.content_type, body, p.query, &c.client_names, body_padding});
      if (reply.finish_on_worker) {
        auto job = std::make_shared<OffloadedRequest>(
            OffloadedRequest{c.fd, c.id, std::string(), std::move(reply.finish_on_worker)});
        c.state = Connection::State::Offloaded;
        c.pending_consumed = p.consumed;
        c.pending_head = head;
        c.pending_keep_alive = p.keep_alive;
        job->bytes = std::move(c.in);
        c.in = std::string();
        set_interest(c, 0);
        Loop *self = this;
        server_.workers_->enqueue([job, self, &server = server_] {
          const auto started = Clock::now();
          HttpReply answer = HttpsServer::finish_safely(job->finish);
          job->finish = nullptr;  // what it holds is freed here, before the trim
          self->complete(job->fd, job->id, std::move(answer), std::move(job->bytes));
          if (Clock::now() - started >= std::chrono::milliseconds(10)) server.trim_heap_now_and_then();
        });
        return;
      }
      finish_request(c, reply, p.consumed, head, p.keep_alive, now);
      if (!conns_.count(fd)) return;
    }
  }

  // What the request at the start of the input needs the buffer to hold.
  size_t wanted_size(const Connection &c) const {
    const HttpParse &p = c.parser.request();
    if (!p.headers_complete) return allowance_;  // the header limit is within it
    if (p.has_length) return p.known_size();
    // Chunked, size unknown: the most the largest body can need, with a
    // trailer and a chunk line of framing not yet decoded (the parser
    // decodes in place as it goes), or what the budget can ever give.
    const auto &limits = server_.config_.limits;
    const size_t most = p.head_bytes + limits.max_body_bytes + limits.max_header_bytes + 4 + 1026;
    return std::min(most, allowance_ + server_.budget_->largest_grant(true));
  }

  // Takes room from the budget for the rest of the request at the start of
  // the input, all of it or none. False when the connection was answered
  // 413 (it can never fit) or is held back until room comes back.
  bool reserve_for(Connection &c, Clock::time_point now) {
    const HttpParse &p = c.parser.request();
    ByteBudget &budget = *server_.budget_;
    const size_t wanted = wanted_size(c);
    // Chunked bodies are never what kube-apiserver sends: always large.
    const bool large = c.taken > 0 ? c.taken_large : (p.chunked || budget.is_large(wanted));
    if (wanted <= c.reserved || wanted - allowance_ > budget.largest_grant(large)) {
      release_hold(c);
      server_.too_large_->inc();
      const size_t most = allowance_ + budget.largest_grant(large) - p.head_bytes;
      send_reply(c,
                 error_reply(413, "request body exceeds the " + std::to_string(most) +
                                      " bytes that --max-buffered-size and --max-buffered-size-per-client "
                                      "let one request of its kind hold"),
                 false, true, now);
      return false;
    }
    const size_t more = wanted - allowance_ - c.taken;
    if (!budget.take(more, large, c.client)) {
      // Counted as held back first, so that room given back from now on
      // wakes this loop; then once more, for room that came back before.
      hold_back(c);
      if (!budget.take(more, large, c.client)) return false;
      set_interest(c, c.out_sent < c.out.size() ? static_cast<uint32_t>(EPOLLIN | EPOLLOUT)
                                                : static_cast<uint32_t>(EPOLLIN));
    }
    release_hold(c);
    c.taken += more;
    c.taken_large = large;
    c.reserved = wanted;
    // Address space for all of it at once (pages are resident only once
    // written): growing by doubling would copy the body and fault fresh
    // pages at every step (a 7 MiB chunked body cost 1.8x one with
    // Content-Length that way; 1.06 to 1.26x so).
    c.in.reserve(wanted + kSpareAfterRequest);
    return true;
  }

  void hold_back(Connection &c) {
    if (!c.held_back) {
      c.held_back = true;
      ++server_.held_back_;
      server_.held_back_total_->inc();
    }
    held_.emplace_back(c.fd, c.id);
    // Nothing is read meanwhile, but a client that gives up must still be
    // seen, or it would hold its share of the budget to --read-timeout.
    set_interest(c, EPOLLRDHUP | (c.out_sent < c.out.size() ? static_cast<uint32_t>(EPOLLOUT) : 0u));
  }

  // A held-back client closed its side: if what it sent before can no
  // longer complete the request, it is gone for good.
  void on_held_back_hangup(Connection &c) {
    int in_socket = 0;
    if (ioctl(c.fd, FIONREAD, &in_socket) != 0) in_socket = 0;
    const HttpParse &p = c.parser.request();
    // TLS adds to every record, so fewer bytes in the socket than the body
    // still needs cannot be enough; a chunked body could end at any byte.
    const size_t needed = p.has_length ? wanted_size(c) - c.in.size() : 1;
    if (!SSL_has_pending(c.ssl.get()) && static_cast<size_t>(in_socket) < needed) {
      drop(c);
      return;
    }
    set_interest(c, c.interest & ~static_cast<uint32_t>(EPOLLRDHUP));
  }

  void release_hold(Connection &c) {
    if (!c.held_back) return;
    c.held_back = false;
    --server_.held_back_;
  }

  // Held-back requests, oldest first, try again to take their room.
  void retry_held(Clock::time_point now) {
    if (held_.empty()) return;
    std::vector<std::pair<int, uint64_t>> waiting;
    waiting.swap(held_);
    for (const auto &[fd, id] : waiting) {
      auto it = conns_.find(fd);
      if (it == conns_.end() || it->second->id != id || !it->second->held_back) continue;
      Connection &c = *it->second;
      if (!reserve_for(c, now)) continue;
      set_interest(c, EPOLLIN);
      read_input(c, now);
    }
  }

  // Gives back what the connection holds beyond the request now at the start
  // of its input, and the memory with it.
  void settle_input(Connection &c) {
    const size_t keep = std::max(c.in.size(), allowance_) - allowance_;
    if (keep < c.taken) {
      server_.budget_->give_back(c.taken - keep, c.taken_large, c.client);
      c.taken = keep;
      c.reserved = allowance_ + keep;
      if (c.in.capacity() > c.reserved) c.in.shrink_to_fit();
      server_.budget_returned();
    }
  }

  void finish_request(Connection &c, const HttpReply &reply, size_t consumed, bool head, bool keep_alive,
                      Clock::time_point now) {
    c.in.erase(0, consumed);
    c.parser.reset();
    settle_input(c);
    if (!c.in.empty()) c.request_started = now;
    ++c.requests;
    const bool close_after = !keep_alive || server_.stopping_ ||
                             c.requests >= server_.config_.max_requests_per_connection ||
                             (c.input_ended && c.in.empty());
    send_reply(c, reply, head, close_after, now);
  }

  void send(Connection &c, std::string_view bytes, bool close_after, Clock::time_point now) {
    begin_output(c);
    c.out += bytes;
    c.close_after_write = c.close_after_write || close_after;
    charge_answer(c);
    flush(c, now);
  }

  void send_reply(Connection &c, const HttpReply &reply, bool head, bool close_after, Clock::time_point now) {
    begin_output(c);
    append_http_reply(c.out, reply, head, close_after);
    c.close_after_write = c.close_after_write || close_after;
    charge_answer(c);
    flush(c, now);
  }

  // An answer past its allowance is counted in the budget until written.
  void charge_answer(Connection &c) {
    const size_t over = c.out.capacity() > kAnswerAllowance ? c.out.capacity() - kAnswerAllowance : 0;
    if (over <= c.answer_taken) return;
    server_.budget_->take_anyway(over - c.answer_taken, c.client);
    c.answer_taken = over;
  }

  void release_answer(Connection &c) {
    if (c.answer_taken == 0) return;
    server_.budget_->give_back(c.answer_taken, false, c.client);
    c.answer_taken = 0;
    server_.budget_returned();
  }

  // The output buffer keeps its capacity from one answer to the next.
  static void begin_output(Connection &c) {
    if (c.out_sent >= c.out.size()) {
      c.out.clear();
      c.out_sent = 0;
    }
  }

  // Writes what is pending; false when the connection is gone or closing.
  bool flush(Connection &c, Clock::time_point now) {
    while (c.out_sent < c.out.size()) {
      clear_openssl_errors();
      const int n =
          SSL_write(c.ssl.get(), c.out.data() + c.out_sent, static_cast<int>(c.out.size() - c.out_sent));
      if (n > 0) {
        c.out_sent += static_cast<size_t>(n);
        c.last_activity = now;
        continue;
      }
      const int err = SSL_get_error(c.ssl.get(), n);
      if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
        set_interest(c, EPOLLIN | EPOLLOUT);
        return true;
      }
      drop(c);
      return false;
    }
    c.out.clear();
    c.out_sent = 0;
    if (c.out.capacity() > kAnswerAllowance) {
      c.out.shrink_to_fit();
      release_answer(c);
    }
    if (c.close_after_write) {
      start_linger(c, now);
      return false;
    }
    if (c.state == Connection::State::Open) set_interest(c, EPOLLIN);
    return true;
  }

  void start_linger(Connection &c, Clock::time_point now) {
    SSL_shutdown(c.ssl.get());  // close_notify: the answer is complete
    shutdown(c.fd, SHUT_WR);
    c.state = Connection::State::Lingering;
    c.linger_until = now + kLingerTime;
    c.in.clear();
    settle_input(c);
    release_hold(c);
    set_interest(c, EPOLLIN);
  }

  void linger(Connection &c, Clock::time_point) {
    char buf[kReadChunk];
    for (;;) {
      const ssize_t n = recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      drop(c);
      return;
    }
  }

  void drop(Connection &c) {
    const int fd = c.fd;
    server_.release_client(c.client);
    release_hold(c);
    // The budget goes back the way it does after every request, so there is
    // one place that knows how: with no input left, all taken for it.
    c.in.clear();
    settle_input(c);
    release_answer(c);
    epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    c.ssl.reset();
    close(fd);
    --load_;
    --server_.connections_;
    conns_.erase(fd);
  }

  // Timeouts, once a second.
  void sweep(Clock::time_point now) {
    const auto &cfg = server_.config_;
    std::vector<Connection *> expired;
    std::vector<Connection *> idle;
    for (auto &entry : conns_) {
      Connection &c = *entry.second;
      switch (c.state) {
        case Connection::State::Handshake:
          if (now - c.accepted > cfg.read_timeout) expired.push_back(&c);
          break;
        case Connection::State::Lingering:
          if (now > c.linger_until) expired.push_back(&c);
          break;
        case Connection::State::Offloaded:
          break;
        case Connection::State::Open:
          if (c.out_sent < c.out.size()) {
            if (now - c.last_activity > cfg.write_timeout) expired.push_back(&c);
          } else if (!c.in.empty()) {
            if (now - c.request_started > cfg.read_timeout) expired.push_back(&c);
          } else if (now - c.last_activity > cfg.idle_timeout) {
            idle.push_back(&c);
          }
          break;
      }
    }
    for (Connection *c : expired) {
      if (c->state != Connection::State::Lingering) server_.timeouts_->inc();
      drop(*c);
    }
    for (Connection *c : idle) {
      SSL_shutdown(c->ssl.get());
      drop(*c);
    }
  }

  void begin_stop() {
    stop_seen_ = true;
    if (listen_fd_ >= 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
    // Once no loop accepts, new connections are refused at once rather than
    // left waiting in the backlog of a server that is going away.
    if (++server_.loops_stopped_ == server_.loops_.size() && server_.listen_fd_ >= 0) {
      // Connections the kernel already accepted would be reset by the
      // close: take them in first; they are answered, then closed.
      const auto now = Clock::now();
      sockaddr_storage addr{};
      socklen_t len = sizeof addr;
      for (int fd; (fd = accept4(server_.listen_fd_, reinterpret_cast<sockaddr *>(&addr), &len,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;
           len = sizeof addr) {
        std::string client = client_address(addr);
        server_.admit_client(client);  // counted either way: it is answered, then closed
        ++server_.connections_;
        ++load_;
        open(fd, now, std::move(client));
      }
      close(server_.listen_fd_);
      server_.listen_fd_ = -1;
    }
    std::vector<Connection *> idle;
    for (auto &entry : conns_) {
      Connection &c = *entry.second;
      if (c.state == Connection::State::Open && c.in.empty() && c.out_sent >= c.out.size())
        idle.push_back(&c);
      // A handshake started before the stop is finished and answered.
    }
    for (Connection *c : idle) {
      if (c->state == Connection::State::Open) SSL_shutdown(c->ssl.get());
      drop(*c);
    }
  }

  HttpsServer &server_;
  const size_t allowance_ = server_.request_allowance();
  std::vector<std::pair<int, uint64_t>> held_;  // held-back connections (fd, id), oldest first
  std::atomic<bool> retry_{false};
  int epfd_ = -1;
  int wake_fd_ = -1;
  int listen_fd_ = -1;
  bool stop_seen_ = false;
  uint64_t next_id_ = 1;
  std::atomic<size_t> load_{0};
  std::unordered_map<int, std::unique_ptr<Connection>> conns_;
  std::mutex inbox_mutex_;
  std::vector<std::pair<int, std::string>> new_fds_;
  std::vector<Done> done_;
};

HttpsServer::HttpsServer(HttpsServerConfig config, std::shared_ptr<TlsContext> tls, Handler handler)
    : config_(std::move(config)), tls_(std::move(tls)), handler_(std::move(handler)) {
  std::signal(SIGPIPE, SIG_IGN);
  ssl_ctx_.reset(SSL_CTX_new(TLS_server_method()));
  if (!ssl_ctx_ || !tls_->configure(*ssl_ctx_)) throw std::runtime_error("cannot set up TLS");
  // Non-blocking writes may be partial and resumed from a moved buffer;
  // idle connections give their TLS buffers back.
  SSL_CTX_set_mode(ssl_ctx_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                       SSL_MODE_RELEASE_BUFFERS);
  // Without read-ahead OpenSSL reads a record's 5-byte header and then its
  // body: two reads for every request (strace). With it, one read takes
  // whatever the socket holds.
  SSL_CTX_set_read_ahead(ssl_ctx_.get(), 1);
  if (config_.threads == 0) config_.threads = usable_cpus();
  if (config_.max_connections_per_client == 0)
    config_.max_connections_per_client = std::max<size_t>(1, config_.max_connections / 2);
  workers_ = std::make_unique<WorkerPool>(config_.max_blocking_workers, std::chrono::seconds(30));
  // A quarter of the budget is kept for ordinary reviews (up to 1 MiB), and
  // by default one client address may hold half of it, so that it leaves
  // the other half to kube-apiserver whatever the size of its bodies.
  if (config_.max_buffered_bytes_per_client == 0)
    config_.max_buffered_bytes_per_client = std::max<size_t>(1, config_.max_buffered_bytes / 2);
  budget_ =
      std::make_unique<ByteBudget>(config_.max_buffered_bytes, kOrdinaryRequest,
                                   config_.max_buffered_bytes / 4, config_.max_buffered_bytes_per_client);
  MetricsRegistry &m = metrics();
  const char *refused_help = "Connections closed at once: at a connection limit with nothing stale to close.";
  refused_ =
      &m.counter("hci_admission_connections_refused_total", refused_help, {{"limit", "max-connections"}});
  refused_per_client_ = &m.counter("hci_admission_connections_refused_total", refused_help,
                                   {{"limit", "max-connections-per-client"}});
  evicted_ =
      &m.counter("hci_admission_connections_evicted_total",
                 "Stale connections (slow handshake, slow request, idle) closed to make room for new ones.");
  handshake_failures_ = &m.counter("hci_admission_tls_handshake_failures_total",
                                   "TLS handshakes that failed, plain HTTP on the TLS port included.");
  timeouts_ =
      &m.counter("hci_admission_connections_timed_out_total",
                 "Connections closed because a handshake, request or answer took longer than allowed.");
  m.gauge_function("hci_admission_connections_open", "Open client connections.",
                   [this] { return static_cast<double>(connections_.load()); });
  held_back_total_ = &m.counter("hci_admission_requests_held_back_total",
                                "Requests whose reading stopped until the buffer budget had room for them.");
  too_large_ =
      &m.counter("hci_admission_requests_refused_total",
                 "Requests refused before their body was read (413): more than --max-buffered-size lets "
                 "one request hold.",
                 {{"reason", "exceeds-buffer-budget"}});
  m.gauge_function("hci_admission_buffered_bytes",
                   "Bytes held for clients beyond each connection's allowance: bodies being read, answers "
                   "not yet written.",
                   [this] { return static_cast<double>(budget_->held()); });
  m.gauge_function("hci_admission_buffered_bytes_limit", "The buffer budget, --max-buffered-size.",
                   [this] { return static_cast<double>(budget_->limit()); });
  m.gauge_function("hci_admission_requests_held_back", "Requests waiting now for room in the buffer budget.",
                   [this] { return static_cast<double>(held_back_.load()); });
}

HttpsServer::~HttpsServer() {
  // The registry outlives this server: its gauge must not read a dead one.
  metrics().gauge_function("hci_admission_connections_open", "Open client connections.", [] { return 0.0; });
  metrics().gauge_function("hci_admission_buffered_bytes", "", [] { return 0.0; });
  metrics().gauge_function("hci_admission_requests_held_back", "", [] { return 0.0; });
  metrics().gauge_function("hci_admission_buffered_bytes_limit", "", [] { return 0.0; });
  stop();
  // Workers finish first: they hand their answers to the loops.
  if (workers_) workers_->shutdown();
  loops_.clear();
  if (listen_fd_ >= 0) close(listen_fd_);
}

size_t HttpsServer::request_allowance() const {
  // The whole header section with its blank line, the most a request can
  // need before its body size is known.
  return std::max<size_t>(config_.limits.max_header_bytes + 4, 4096);
}

void HttpsServer::give_memory_back() {
  // What the server holds for clients, roughly: each connection at its
  // allowance, and the budget. When that has fallen by more than 8 MiB
  // since the last look, freed blocks in the middle of the heap go back
  // to the system too (glibc gives back only its top on its own). After
  // 1,000 hostile connections closed, RSS stayed at 54 MiB without this.
  const size_t holding = connections_.load() * request_allowance() + budget_->held();
  if (holding >= memory_high_water_) {
    memory_high_water_ = holding;
  } else if (memory_high_water_ - holding > (8u << 20)) {
    malloc_trim(0);
    memory_high_water_ = holding;
  }
}

void HttpsServer::budget_returned() {
  if (held_back_.load(std::memory_order_relaxed) == 0) return;
  for (auto &loop : loops_) loop->retry_soon();
}

HttpReply HttpsServer::handle_safely(const HttpRequestView &request) const {
  try {
    return handler_(request);
  } catch (const std::exception &e) {
    // A handler that throws answers 500 for this request; it must not take
    // the loop, and every other connection, down with it.
    LogLine("request handler failed").field("path", request.path).field("error", e.what()).error();
    return error_reply(500, std::string("internal error: ") + e.what());
  }
}

void HttpsServer::trim_heap_now_and_then() {
  // A request that read much of the cluster did so on threads of its own,
  // whose malloc arenas keep what was freed. Giving it back keeps one
  // review's peak from stacking on the last: the upgrade guard over 10,000
  // volumes, 10,000 pods and 1,000 PDBs peaked at 56.0 MiB over 30 s
  // without it, 43.2 MiB with a trim after each review, and 55.1 MiB with
  // at most one trim a second. But a trim costs about a millisecond and
  // takes the arenas' locks: one after every request held the PVC cleanup
  // guard reading one page to 788 reviews/s (5,624 without). So only a
  // request that took 10 ms or more on its worker, as big reads do, is
  // followed by one, and at most one every 100 ms.
  const int64_t now =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
  int64_t last = last_trim_ms_.load(std::memory_order_relaxed);
  if (now - last < 100 || !last_trim_ms_.compare_exchange_strong(last, now)) return;
  malloc_trim(0);
}

HttpReply HttpsServer::finish_safely(const std::function<HttpReply()> &finish) {
  try {
    return finish();
  } catch (const std::exception &e) {
    LogLine("request handler failed on a worker").field("error", e.what()).error();
    return error_reply(500, std::string("internal error: ") + e.what());
  }
}

bool HttpsServer::admit_client(const std::string &client) {
  std::lock_guard<std::mutex> lock(clients_mutex_);
  size_t &n = per_client_[client];
  if (n >= config_.max_connections_per_client) return false;
  ++n;
  return true;
}

void HttpsServer::release_client(const std::string &client) {
  std::lock_guard<std::mutex> lock(clients_mutex_);
  auto it = per_client_.find(client);
  if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
}

void HttpsServer::bind() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo *res = nullptr;
  const std::string where = config_.bind_address + ":" + std::to_string(config_.port);
  const int gai =
      getaddrinfo(config_.bind_address.c_str(), std::to_string(config_.port).c_str(), &hints, &res);
  if (gai != 0) throw std::runtime_error("cannot listen on " + where + ": " + gai_strerror(gai));
  std::string why = "no usable address";
  for (addrinfo *a = res; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    // SO_REUSEADDR but not SO_REUSEPORT: a second server on the same port
    // must fail to start instead of silently sharing it.
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketReceiveBuffer, sizeof kSocketReceiveBuffer);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSocketSendBuffer, sizeof kSocketSendBuffer);
    if (a->ai_family == AF_INET6) {
      int no = 0;
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &no, sizeof no);
    }
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0) {
      listen_fd_ = fd;
      break;
    }
    why = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(res);
  if (listen_fd_ < 0) throw std::runtime_error("cannot listen on " + where + ": " + why);
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr *>(&addr), &len);
  port_ = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6 *>(&addr)->sin6_port
                                           : reinterpret_cast<sockaddr_in *>(&addr)->sin_port);
  for (size_t i = 0; i < config_.threads; ++i) {
    loops_.push_back(std::make_unique<Loop>(*this));
    loops_.back()->watch_listener(listen_fd_);
  }
  listening_ = true;
}

void HttpsServer::serve() {
  if (loops_.empty()) throw std::logic_error("serve() before bind()");
  std::vector<std::thread> threads;
  for (size_t i = 1; i < loops_.size(); ++i) threads.emplace_back([this, i] { loops_[i]->run(); });
  loops_[0]->run();
  for (auto &t : threads) t.join();
  listening_ = false;
}

void HttpsServer::stop() {
  listening_ = false;
  stopping_ = true;
  for (auto &loop : loops_) loop->wake();
}

}  // namespace hci_admission
