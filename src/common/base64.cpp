#include "hci_admission/common/base64.hpp"

#include <openssl/evp.h>

#include <cctype>

namespace hci_admission {

void append_base64(std::string &out, std::string_view data) {
  const size_t at = out.size();
  out.resize(at + 4 * ((data.size() + 2) / 3));
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char *>(out.data() + at),
                      reinterpret_cast<const unsigned char *>(data.data()), static_cast<int>(data.size()));
  out.resize(at + static_cast<size_t>(n));
}

std::string base64_encode(std::string_view data) {
  std::string out;
  append_base64(out, data);
  return out;
}

std::string base64_decode(std::string_view text) {
  std::string clean;
  clean.reserve(text.size() + 3);
  for (char c : text) {
    if (!std::isspace(static_cast<unsigned char>(c))) clean += c;
  }
  while (clean.size() % 4 != 0) clean += '=';
  std::string out(clean.size() / 4 * 3, '\0');
  const int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                      reinterpret_cast<const unsigned char *>(clean.data()), static_cast<int>(clean.size()));
  if (n < 0) throw Base64Error("invalid base64");
  size_t pad = 0;
  while (pad < 2 && pad < clean.size() && clean[clean.size() - 1 - pad] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

}  // namespace hci_admission
