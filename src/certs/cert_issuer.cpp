#include "hci_admission/certs/cert_issuer.hpp"

#include "hci_admission/common/openssl.hpp"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>

namespace hci_admission {
namespace {

// Issued certificates start a little in the past, so that a node whose
// clock is behind does not see them as not yet valid: five minutes, or a
// tenth of a short validity (renewal is reckoned on the whole period).
std::chrono::system_clock::duration backdate(std::chrono::seconds validity) {
  return std::min<std::chrono::system_clock::duration>(std::chrono::minutes(5), validity / 10);
}

X509Ptr read_cert(const std::string &pem) {
  X509Ptr cert = read_pem_certificate(pem);
  if (!cert) throw CertificateError("not a PEM certificate");
  return cert;
}

PrivateKeyPtr read_key(const std::string &pem) {
  PrivateKeyPtr key = read_pem_private_key(pem);
  if (!key) throw CertificateError("not a PEM private key");
  return key;
}

void check(int ok, const char *what) {
  if (ok <= 0) throw CertificateError(std::string("cannot build the certificate: ") + what);
}

void add_extension(X509 *cert, X509 *issuer, int nid, const std::string &value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) throw CertificateError("cannot build the extension " + value);
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  check(ok, "extension");
}

// A certificate with a random 127-bit serial, the subject and validity
// set, signed later by the caller.
X509Ptr new_certificate(const std::string &common_name, EVP_PKEY *key,
                        std::chrono::system_clock::time_point from,
                        std::chrono::system_clock::time_point until) {
  X509Ptr cert(X509_new());
  check(X509_set_version(cert.get(), 2), "version");
  std::unique_ptr<BIGNUM, OpensslFree<BIGNUM, BN_free>> serial(BN_new());
  check(BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY), "serial");
  check(BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr, "serial");
  check(ASN1_TIME_set(X509_getm_notBefore(cert.get()), std::chrono::system_clock::to_time_t(from)) != nullptr,
        "notBefore");
  check(ASN1_TIME_set(X509_getm_notAfter(cert.get()), std::chrono::system_clock::to_time_t(until)) != nullptr,
        "notAfter");
  X509_NAME *name = X509_get_subject_name(cert.get());
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char *>(common_name.c_str()), -1, -1, 0),
        "subject");
  check(X509_set_pubkey(cert.get(), key), "public key");
  return cert;
}

PemPair to_pem(X509 *cert, EVP_PKEY *key) {
  BioPtr cb(BIO_new(BIO_s_mem()));
  BioPtr kb(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509(cb.get(), cert), "PEM");
  check(PEM_write_bio_PrivateKey(kb.get(), key, nullptr, nullptr, 0, nullptr, nullptr), "PEM key");
  return {memory_bio_text(cb.get()), memory_bio_text(kb.get())};
}

PrivateKeyPtr new_key() {
  PrivateKeyPtr key(EVP_EC_gen("P-256"));
  if (!key) throw CertificateError("cannot generate an EC P-256 key");
  return key;
}

}  // namespace

double CertificateFacts::remaining_fraction(std::chrono::system_clock::time_point now) const {
  if (now >= not_after) return 0;
  if (now <= not_before) return 1;
  return std::chrono::duration<double>(not_after - now) /
         std::chrono::duration<double>(not_after - not_before);
}

PemPair make_ca(const std::string &common_name, std::chrono::seconds validity,
                std::chrono::system_clock::time_point now) {
  PrivateKeyPtr key = new_key();
  X509Ptr cert = new_certificate(common_name, key.get(), now - backdate(validity), now + validity);
  check(X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())), "issuer");
  add_extension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  add_extension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
  add_extension(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
  check(X509_sign(cert.get(), key.get(), EVP_sha256()), "signature");
  return to_pem(cert.get(), key.get());
}

PemPair issue_serving_certificate(const PemPair &ca, const std::vector<std::string> &dns_names,
                                  std::chrono::seconds validity, std::chrono::system_clock::time_point now) {
  if (dns_names.empty()) throw CertificateError("a serving certificate needs at least one DNS name");
  X509Ptr ca_cert = read_cert(ca.cert);
  PrivateKeyPtr ca_key = read_key(ca.key);
  const auto ca_until = to_time_point(X509_get0_notAfter(ca_cert.get()));
  PrivateKeyPtr key = new_key();
  X509Ptr cert = new_certificate(dns_names.front(), key.get(), now - backdate(validity),
                                 std::min(now + validity, ca_until));
  check(X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get())), "issuer");
  std::string san;
  for (const auto &n : dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
  add_extension(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_extension(cert.get(), ca_cert.get(), NID_key_usage, "critical,digitalSignature");
  add_extension(cert.get(), ca_cert.get(), NID_ext_key_usage, "serverAuth");
  add_extension(cert.get(), ca_cert.get(), NID_subject_alt_name, san);
  add_extension(cert.get(), ca_cert.get(), NID_authority_key_identifier, "keyid:always");
  check(X509_sign(cert.get(), ca_key.get(), EVP_sha256()), "signature");
  return to_pem(cert.get(), key.get());
}

CertificateFacts inspect_certificate(const std::string &pem) {
  X509Ptr cert = read_cert(pem);
  CertificateFacts f;
  f.not_before = to_time_point(X509_get0_notBefore(cert.get()));
  f.not_after = to_time_point(X509_get0_notAfter(cert.get()));
  f.is_ca = X509_check_ca(cert.get()) != 0;
  f.common_name = common_name(cert.get());
  f.dns_names = subject_alt_names(cert.get(), false);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  X509_digest(cert.get(), EVP_sha256(), md, &len);
  static const char hex[] = "0123456789abcdef";
  for (unsigned i = 0; i < len; ++i) {
    f.sha256 += hex[md[i] >> 4];
    f.sha256 += hex[md[i] & 15];
  }
  return f;
}

std::vector<std::string> split_pem_bundle(const std::string &bundle) {
  static const std::string kBegin = "-----BEGIN CERTIFICATE-----";
  static const std::string kEnd = "-----END CERTIFICATE-----";
  std::vector<std::string> out;
  size_t at = 0;
  while ((at = bundle.find(kBegin, at)) != std::string::npos) {
    const size_t end = bundle.find(kEnd, at);
    if (end == std::string::npos) throw CertificateError("a PEM certificate is cut short");
    std::string one = bundle.substr(at, end + kEnd.size() - at) + "\n";
    read_cert(one);  // throws for a block that does not parse
    out.push_back(std::move(one));
    at = end + kEnd.size();
  }
  return out;
}

bool signed_by(const std::string &cert_pem, const std::string &ca_pem) {
  try {
    X509Ptr cert = read_cert(cert_pem);
    X509Ptr ca = read_cert(ca_pem);
    return X509_NAME_cmp(X509_get_issuer_name(cert.get()), X509_get_subject_name(ca.get())) == 0 &&
           X509_verify(cert.get(), X509_get0_pubkey(ca.get())) == 1;
  } catch (const CertificateError &) {
    return false;
  }
}

bool key_matches(const PemPair &pair) {
  try {
    X509Ptr cert = read_cert(pair.cert);
    PrivateKeyPtr key = read_key(pair.key);
    return X509_check_private_key(cert.get(), key.get()) == 1;
  } catch (const CertificateError &) {
    return false;
  }
}

}  // namespace hci_admission
