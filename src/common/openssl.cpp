#include "hci_admission/common/openssl.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <ctime>

namespace hci_admission {

void free_x509_stack(STACK_OF(X509) * stack) { sk_X509_pop_free(stack, X509_free); }
void free_x509_name_stack(STACK_OF(X509_NAME) * stack) { sk_X509_NAME_pop_free(stack, X509_NAME_free); }

BioPtr memory_bio(std::string_view text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string memory_bio_text(BIO *bio) {
  char *data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

X509Ptr read_pem_certificate(std::string_view pem) {
  auto bio = memory_bio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return cert;
}

std::vector<X509Ptr> read_pem_certificates(std::string_view pem) {
  auto bio = memory_bio(pem);
  std::vector<X509Ptr> certs;
  while (X509 *cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(cert);
  ERR_clear_error();  // the end of the PEM stream reads as an error
  return certs;
}

PrivateKeyPtr read_pem_private_key(std::string_view pem) {
  auto bio = memory_bio(pem);
  return PrivateKeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

std::string take_openssl_error(const char *if_none) {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return if_none;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::chrono::system_clock::time_point to_time_point(const ASN1_TIME *t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string common_name(X509 *cert) {
  X509_NAME *subject = X509_get_subject_name(cert);
  const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (at < 0) return "";
  const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
  return std::string(reinterpret_cast<const char *>(ASN1_STRING_get0_data(v)),
                     static_cast<size_t>(ASN1_STRING_length(v)));
}

std::vector<std::string> subject_alt_names(X509 *cert, bool with_ip_addresses) {
  std::vector<std::string> names;
  std::unique_ptr<GENERAL_NAMES, OpensslFree<GENERAL_NAMES, GENERAL_NAMES_free>> sans(
      static_cast<GENERAL_NAMES *>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME *n = sk_GENERAL_NAME_value(sans.get(), i);
    if (n->type == GEN_DNS) {
      names.emplace_back(reinterpret_cast<const char *>(ASN1_STRING_get0_data(n->d.dNSName)),
                         static_cast<size_t>(ASN1_STRING_length(n->d.dNSName)));
    } else if (n->type == GEN_IPADD && with_ip_addresses) {
      char ip[INET6_ADDRSTRLEN] = {0};
      const int len = ASN1_STRING_length(n->d.iPAddress);
      const auto *d = ASN1_STRING_get0_data(n->d.iPAddress);
      if (len == 4) inet_ntop(AF_INET, d, ip, sizeof ip);
      if (len == 16) inet_ntop(AF_INET6, d, ip, sizeof ip);
      names.emplace_back(ip);
    }
  }
  return names;
}

}  // namespace hci_admission
