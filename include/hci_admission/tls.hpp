// Serving certificates: loading, checking and swapping them under a live
// SSL_CTX so that new connections get a new certificate without a restart.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace hci_admission {

class TlsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A certificate chain with its private key, read from a Kubernetes TLS
// Secret layout (tls.crt, tls.key).
class ServingCertificate {
 public:
  // Throws TlsError naming the file and the problem: missing, unreadable,
  // not PEM, key not matching the certificate, not yet valid or expired.
  static std::shared_ptr<const ServingCertificate> load(const std::string &cert_dir);

  ~ServingCertificate();
  ServingCertificate(const ServingCertificate &) = delete;
  ServingCertificate &operator=(const ServingCertificate &) = delete;

  std::chrono::system_clock::time_point not_after() const { return not_after_; }
  std::chrono::system_clock::time_point not_before() const { return not_before_; }
  const std::string &subject() const { return subject_; }
  const std::vector<std::string> &names() const { return names_; }  // SANs
  bool valid_at(std::chrono::system_clock::time_point t) const;

  // Puts this certificate on one connection (called during the handshake).
  bool use_on(SSL *ssl) const;

 private:
  ServingCertificate() = default;
  X509 *leaf_ = nullptr;
  EVP_PKEY *key_ = nullptr;
  STACK_OF(X509) *chain_ = nullptr;
  std::chrono::system_clock::time_point not_before_{};
  std::chrono::system_clock::time_point not_after_{};
  std::string subject_;
  std::vector<std::string> names_;
};

// Owns the server's SSL_CTX settings and the certificate every new
// handshake is given.
class TlsContext {
 public:
  explicit TlsContext(std::shared_ptr<const ServingCertificate> initial);

  // Configures a fresh SSL_CTX: TLS 1.2 minimum, ECDHE with AEAD ciphers
  // only, HTTP/1.1 by ALPN, and the certificate taken from this object at
  // each handshake.
  bool configure(SSL_CTX &ctx);

  void replace(std::shared_ptr<const ServingCertificate> next);
  std::shared_ptr<const ServingCertificate> current() const;

 private:
  static int on_handshake(SSL *ssl, void *self);
  mutable std::mutex mutex_;
  std::shared_ptr<const ServingCertificate> current_;
};

}  // namespace hci_admission
