// Test helpers for TLS: a temporary folder, a certificate pair written the
// way a Secret volume holds it, and a blocking TLS client that verifies
// the server against a CA.
#pragma once

#include "hci_admission/common/files.hpp"
#include "hci_admission/common/openssl.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace test_support {

class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/hci-admission-test-XXXXXX";
    if (mkdtemp(name) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = name;
  }
  ~TempDir() {
    const std::string command = "rm -rf '" + path_ + "'";
    if (std::system(command.c_str()) != 0) return;  // left behind in /tmp at worst
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  const std::string &path() const { return path_; }

 private:
  std::string path_;
};

inline void write_pair(const std::string &dir, const std::string &cert, const std::string &key) {
  hci_admission::write_file_atomically(dir + "/tls.key", key, 0600);
  hci_admission::write_file_atomically(dir + "/tls.crt", cert, 0644);
}

// One TLS connection to 127.0.0.1:port, verifying the server's certificate
// against `ca_pem` and the name "localhost"; a small `rcvbuf` (bytes) keeps
// what the server sends waiting on its side while this client does not read.
class TlsClient {
 public:
  TlsClient(int port, const std::string &ca_pem, int rcvbuf = 0) : ctx_(SSL_CTX_new(TLS_client_method())) {
    hci_admission::X509StorePtr store(X509_STORE_new());
    for (const auto &cert : hci_admission::read_pem_certificates(ca_pem))
      X509_STORE_add_cert(store.get(), cert.get());
    SSL_CTX_set_cert_store(ctx_.get(), store.release());
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0)
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);  // before connect: the window
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) return;
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set_fd(ssl_.get(), fd_);
    SSL_set_tlsext_host_name(ssl_.get(), "localhost");
    SSL_set1_host(ssl_.get(), "localhost");
    connected_ = SSL_connect(ssl_.get()) == 1;
  }
  ~TlsClient() {
    ssl_.reset();
    if (fd_ >= 0) close(fd_);
  }
  TlsClient(const TlsClient &) = delete;
  TlsClient &operator=(const TlsClient &) = delete;

  // The handshake completed and the server's certificate verified.
  bool connected() const { return connected_; }
  bool send(const std::string &bytes) {
    return connected_ && SSL_write(ssl_.get(), bytes.data(), static_cast<int>(bytes.size())) ==
                             static_cast<int>(bytes.size());
  }
  // Sends `bytes` and then close_notify in the same TCP segment, as a client
  // does that writes its request and closes its side at once.
  bool send_and_close_notify(const std::string &bytes) {
    int on = 1, off = 0;
    setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
    const bool sent = send(bytes) && SSL_shutdown(ssl_.get()) >= 0;
    setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
    return sent;
  }
  // Reads until `responses` HTTP responses (each with Content-Length) have
  // arrived or the connection closes; returns what was read.
  std::string read_responses(size_t responses) {
    std::string in;
    char buf[16384];
    while (connected_ && count_responses(in) < responses) {
      const int n = SSL_read(ssl_.get(), buf, sizeof buf);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
    }
    return in;
  }
  // True once the server has closed the connection.
  bool closed_by_server() {
    char c = 0;
    return SSL_read(ssl_.get(), &c, 1) <= 0;
  }

 private:
  static size_t count_responses(const std::string &in) {
    size_t count = 0, at = 0;
    for (;;) {
      const size_t head_end = in.find("\r\n\r\n", at);
      if (head_end == std::string::npos) return count;
      const size_t cl = in.find("Content-Length: ", at);
      if (cl == std::string::npos || cl > head_end) return count;
      const size_t length = std::stoul(in.substr(cl + 16));
      if (in.size() < head_end + 4 + length) return count;
      at = head_end + 4 + length;
      ++count;
    }
  }

  hci_admission::SslCtxPtr ctx_;
  hci_admission::SslPtr ssl_;
  int fd_ = -1;
  bool connected_ = false;
};

}  // namespace test_support
