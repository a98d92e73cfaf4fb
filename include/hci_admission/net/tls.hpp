// Serving certificates: loading, checking and swapping them under a live
// SSL_CTX so that new connections get a new certificate without a restart.
#pragma once

#include <openssl/ssl.h>

#include "hci_admission/common/openssl.hpp"
#include "hci_admission/common/worker_pool.hpp"

#include <atomic>
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
  X509Ptr leaf_;
  PrivateKeyPtr key_;
  X509StackPtr chain_;
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

  // Mutual TLS: ask every client for a certificate and verify it against
  // the CA certificates in `pem_file`. A client without one still
  // completes the handshake (kubelet probes have none); what it may reach
  // is decided per path above TLS. Throws TlsError for a file without
  // certificates. Call before configure().
  void require_client_certificates(const std::string &pem_file);

  void replace(std::shared_ptr<const ServingCertificate> next);
  std::shared_ptr<const ServingCertificate> current() const;

 private:
  static int on_handshake(SSL *ssl, void *self);
  mutable std::mutex mutex_;
  std::shared_ptr<const ServingCertificate> current_;
  std::string client_ca_file_;
};

// The names of a client's verified certificate (subject CN, then DNS
// SANs); empty when it sent none or it did not verify.
std::vector<std::string> verified_client_names(SSL *ssl);

// Watches --cert-dir and puts a new certificate into service within
// seconds of a change, without a restart: a Secret volume update swaps a
// symlink, so the files' identity (device, inode, size, mtime) is polled.
// A half-written pair (a new certificate next to the old key) fails to
// load and is tried again on the next tick; the old one stays in service.
class CertificateReloader {
 public:
  CertificateReloader(std::string cert_dir, std::shared_ptr<TlsContext> tls,
                      std::chrono::milliseconds interval = std::chrono::seconds(2));
  CertificateReloader(const CertificateReloader &) = delete;
  CertificateReloader &operator=(const CertificateReloader &) = delete;

  size_t reloads() const { return reloads_; }
  size_t errors() const { return errors_; }

 private:
  std::string fingerprint() const;
  void check();

  std::string cert_dir_;
  std::shared_ptr<TlsContext> tls_;
  std::chrono::milliseconds interval_;
  std::string last_;
  std::atomic<size_t> reloads_{0};
  std::atomic<size_t> errors_{0};
  PeriodicTask task_;  // last: stopped before the state it uses goes
};

}  // namespace hci_admission
