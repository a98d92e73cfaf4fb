// A small certificate authority in process, for self-managed serving
// certificates: EC P-256 keys, SHA-256 signatures, PEM in and out.
#pragma once

#include <openssl/x509.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace hci_admission {

struct PemPair {
  std::string cert;  // one PEM certificate
  std::string key;   // its PKCS#8 PEM private key
};

// What the rotation logic needs to know about a certificate.
struct CertificateFacts {
  std::chrono::system_clock::time_point not_before{};
  std::chrono::system_clock::time_point not_after{};
  std::string common_name;
  std::vector<std::string> dns_names;
  std::string sha256;  // hex fingerprint of the DER encoding
  bool is_ca = false;

  // The fraction of the validity period still ahead at `now` (0 when
  // expired, 1 before it starts).
  double remaining_fraction(std::chrono::system_clock::time_point now) const;
};

class CertificateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A self-signed CA valid from a little before `now` (clocks differ) for
// `validity`.
PemPair make_ca(const std::string &common_name, std::chrono::seconds validity,
                std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// A serving certificate for `dns_names`, signed by `ca`; it never outlives
// the CA. Throws CertificateError when `ca` does not parse.
PemPair issue_serving_certificate(
    const PemPair &ca, const std::vector<std::string> &dns_names, std::chrono::seconds validity,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// Throws CertificateError when `pem` holds no certificate.
CertificateFacts inspect_certificate(const std::string &pem);
// Every certificate in a PEM bundle, each as its own PEM text, in order;
// throws CertificateError for text that is not PEM certificates.
std::vector<std::string> split_pem_bundle(const std::string &bundle);
// `cert` carries a valid signature of `ca`'s key and names it as issuer.
bool signed_by(const std::string &cert_pem, const std::string &ca_pem);
// The private key belongs to the certificate.
bool key_matches(const PemPair &pair);

}  // namespace hci_admission
