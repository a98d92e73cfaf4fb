#include "hci_admission/net/tls.hpp"

#include "hci_admission/common/files.hpp"
#include "hci_admission/common/openssl.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "hci_admission/obs/logging.hpp"

#include <sys/stat.h>

#include <cstring>
#include <ctime>

namespace hci_admission {
namespace {

// ECDHE key exchange with AEAD ciphers only, for TLS 1.2. TLS 1.3 suites
// are all AEAD; AES-128-GCM first because it is the cheapest with AES-NI.
constexpr const char *kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char *kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

}  // namespace

std::shared_ptr<const ServingCertificate> ServingCertificate::load(const std::string &cert_dir) {
  if (cert_dir.empty()) throw TlsError("no certificate directory given (--cert-dir)");
  const std::string cert_path = cert_dir + "/tls.crt";
  const std::string key_path = cert_dir + "/tls.key";
  std::string cert_pem, key_pem;
  try {
    cert_pem = read_file(cert_path, "certificate");
    key_pem = read_file(key_path, "private key");
  } catch (const FileError &e) {
    throw TlsError(e.what());
  }

  std::shared_ptr<ServingCertificate> c(new ServingCertificate());
  ERR_clear_error();
  auto certs = read_pem_certificates(cert_pem);
  if (certs.empty()) throw TlsError("certificate " + cert_path + " holds no PEM certificate");
  c->leaf_ = std::move(certs.front());
  c->chain_.reset(sk_X509_new_null());
  for (size_t i = 1; i < certs.size(); ++i) sk_X509_push(c->chain_.get(), certs[i].release());
  c->key_ = read_pem_private_key(key_pem);
  if (!c->key_) {
    throw TlsError("private key " + key_path + " holds no PEM private key (" + take_openssl_error() + ")");
  }
  if (X509_check_private_key(c->leaf_.get(), c->key_.get()) != 1) {
    ERR_clear_error();
    throw TlsError("private key " + key_path + " does not match certificate " + cert_path);
  }
  c->not_before_ = to_time_point(X509_get0_notBefore(c->leaf_.get()));
  c->not_after_ = to_time_point(X509_get0_notAfter(c->leaf_.get()));
  const auto now = std::chrono::system_clock::now();
  if (now >= c->not_after_) {
    throw TlsError("certificate " + cert_path + " expired at " + format_utc(c->not_after_));
  }
  if (now < c->not_before_) {
    throw TlsError("certificate " + cert_path + " is not valid before " + format_utc(c->not_before_));
  }

  char subject[256];
  X509_NAME_oneline(X509_get_subject_name(c->leaf_.get()), subject, sizeof subject);
  c->subject_ = subject;
  c->names_ = subject_alt_names(c->leaf_.get(), true);
  return c;
}

bool ServingCertificate::valid_at(std::chrono::system_clock::time_point t) const {
  return t >= not_before_ && t < not_after_;
}

bool ServingCertificate::use_on(SSL *ssl) const {
  return SSL_use_cert_and_key(ssl, leaf_.get(), key_.get(), chain_.get(), 1) == 1;
}

TlsContext::TlsContext(std::shared_ptr<const ServingCertificate> initial) : current_(std::move(initial)) {}

void TlsContext::replace(std::shared_ptr<const ServingCertificate> next) {
  std::lock_guard<std::mutex> lock(mutex_);
  current_ = std::move(next);
}

std::shared_ptr<const ServingCertificate> TlsContext::current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return current_;
}

int TlsContext::on_handshake(SSL *ssl, void *self) {
  auto cert = static_cast<TlsContext *>(self)->current();
  return (cert && cert->use_on(ssl)) ? 1 : 0;
}

namespace {
int select_http11(SSL *, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                  unsigned int inlen, void *) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char *selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kHttp11, sizeof kHttp11, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  // A client that offers only h2 is told nothing and speaks HTTP/1.1 or leaves.
  return SSL_TLSEXT_ERR_NOACK;
}
}  // namespace

bool TlsContext::configure(SSL_CTX &ctx) {
  SSL_CTX_set_options(&ctx,
                      SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION) != 1) return false;
  if (SSL_CTX_set_cipher_list(&ctx, kTls12Ciphers) != 1) return false;
  if (SSL_CTX_set_ciphersuites(&ctx, kTls13Suites) != 1) return false;
  SSL_CTX_set_cert_cb(&ctx, &TlsContext::on_handshake, this);
  SSL_CTX_set_alpn_select_cb(&ctx, select_http11, nullptr);
  if (!client_ca_file_.empty()) {
    if (SSL_CTX_load_verify_locations(&ctx, client_ca_file_.c_str(), nullptr) != 1) return false;
    // Tells clients which CAs we accept, so they pick the right certificate.
    SSL_CTX_set_client_CA_list(&ctx, SSL_load_client_CA_file(client_ca_file_.c_str()));
    SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_verify_depth(&ctx, 4);
  }
  return true;
}

void TlsContext::require_client_certificates(const std::string &pem_file) {
  const X509NameStackPtr names(SSL_load_client_CA_file(pem_file.c_str()));
  const int n = names ? sk_X509_NAME_num(names.get()) : 0;
  ERR_clear_error();
  if (n == 0) throw TlsError("--client-ca-file " + pem_file + ": no PEM certificate could be read");
  client_ca_file_ = pem_file;
}

std::vector<std::string> verified_client_names(SSL *ssl) {
  X509 *peer = SSL_get0_peer_certificate(ssl);
  if (peer == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return {};
  std::vector<std::string> names{common_name(peer)};  // "" when verified without a CN: still not empty
  for (auto &n : subject_alt_names(peer, false)) names.push_back(std::move(n));
  return names;
}

CertificateReloader::CertificateReloader(std::string cert_dir, std::shared_ptr<TlsContext> tls,
                                         std::chrono::milliseconds interval)
    : cert_dir_(std::move(cert_dir)),
      tls_(std::move(tls)),
      interval_(interval),
      last_(fingerprint()),
      task_(interval, [this] {
        check();
        return interval_;
      }) {}

std::string CertificateReloader::fingerprint() const {
  std::string out;
  for (const char *name : {"/tls.crt", "/tls.key"}) {
    struct stat st {};
    if (stat((cert_dir_ + name).c_str(), &st) != 0) return "missing";
    out += std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) +
           ":" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ";";
  }
  return out;
}

void CertificateReloader::check() {
  const std::string now = fingerprint();
  if (now == last_) return;
  try {
    auto next = ServingCertificate::load(cert_dir_);
    tls_->replace(next);
    last_ = now;
    ++reloads_;
    LogLine("certificate reloaded")
        .field("subject", next->subject())
        .field("not_after", format_utc(next->not_after()))
        .field("reloads", reloads_.load())
        .info();
  } catch (const TlsError &e) {
    // Often a Secret caught mid-update; the next tick sees it whole.
    ++errors_;
    LogLine("certificate not reloaded; still serving the previous one").field("error", e.what()).warn();
  }
}

}  // namespace hci_admission
