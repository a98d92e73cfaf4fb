// OpenSSL objects owned by std::unique_ptr, PEM reading, and the facts of
// a parsed certificate, for every area that touches OpenSSL (TLS serving,
// the Kubernetes client, the certificate issuer).
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hci_admission {

template <typename T, void (*Free)(T *)>
struct OpensslFree {
  void operator()(T *p) const { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, OpensslFree<X509, X509_free>>;
using PrivateKeyPtr = std::unique_ptr<EVP_PKEY, OpensslFree<EVP_PKEY, EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, OpensslFree<BIO, BIO_free_all>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, OpensslFree<SSL_CTX, SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, OpensslFree<SSL, SSL_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, OpensslFree<X509_STORE, X509_STORE_free>>;
void free_x509_stack(STACK_OF(X509) * stack);
using X509StackPtr = std::unique_ptr<STACK_OF(X509), OpensslFree<STACK_OF(X509), free_x509_stack>>;
void free_x509_name_stack(STACK_OF(X509_NAME) * stack);
using X509NameStackPtr =
    std::unique_ptr<STACK_OF(X509_NAME), OpensslFree<STACK_OF(X509_NAME), free_x509_name_stack>>;

// A read-only BIO over `text`, which must outlive it.
BioPtr memory_bio(std::string_view text);
// The text written into a memory BIO.
std::string memory_bio_text(BIO *bio);

// The first PEM certificate in `pem`; null when there is none.
X509Ptr read_pem_certificate(std::string_view pem);
// Every PEM certificate in `pem`, in order (empty when there is none).
std::vector<X509Ptr> read_pem_certificates(std::string_view pem);
// The PEM private key in `pem`; null when there is none.
PrivateKeyPtr read_pem_private_key(std::string_view pem);

// The oldest error on this thread's OpenSSL error queue, which is then
// cleared; `if_none` when it is empty.
std::string take_openssl_error(const char *if_none = "unknown error");

// The epoch when `t` does not read.
std::chrono::system_clock::time_point to_time_point(const ASN1_TIME *t);
// The subject's CN; "" without one.
std::string common_name(X509 *cert);
// The DNS names among the subject alternative names, in order, and the IP
// addresses too when `with_ip_addresses`.
std::vector<std::string> subject_alt_names(X509 *cert, bool with_ip_addresses);

}  // namespace hci_admission
