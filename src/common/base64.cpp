#include "hci_admission/common/base64.hpp"

#include <openssl/evp.h>

#include <cctype>
#include <cstdint>
#include <cstring>

namespace hci_admission {

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The two characters of every 12 bits, so that three bytes take two
// look-ups instead of four.
struct PairTable {
  char pair[4096][2];
  constexpr PairTable() : pair() {
    for (int i = 0; i < 4096; ++i) {
      pair[i][0] = kAlphabet[i >> 6];
      pair[i][1] = kAlphabet[i & 63];
    }
  }
};
constexpr PairTable kPairs;
}  // namespace

// Written out rather than EVP_EncodeBlock: OpenSSL 3 looks every character
// up in constant time (made for keys), 10.8 instructions a byte of a CSI
// patch by callgrind, and one character at a time from a table is no
// better (11); a patch is no secret, and 12 bits at a time take 5.
void append_base64(std::string &out, std::string_view data) {
  const size_t at = out.size();
  out.resize(at + 4 * ((data.size() + 2) / 3));
  char *o = out.data() + at;
  const auto *in = reinterpret_cast<const unsigned char *>(data.data());
  const size_t n = data.size();
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = uint32_t{in[i]} << 16 | uint32_t{in[i + 1]} << 8 | in[i + 2];
    std::memcpy(o, kPairs.pair[v >> 12], 2);
    std::memcpy(o + 2, kPairs.pair[v & 0xfff], 2);
    o += 4;
  }
  if (i < n) {
    const uint32_t v = uint32_t{in[i]} << 16 | (i + 1 < n ? uint32_t{in[i + 1]} << 8 : 0);
    o[0] = kAlphabet[v >> 18];
    o[1] = kAlphabet[(v >> 12) & 63];
    o[2] = i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
    o[3] = '=';
  }
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
