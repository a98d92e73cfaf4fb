#include "hci_admission/json/json_write.hpp"
#include "hci_admission/common/base64.hpp"

#include <catch2/catch.hpp>

#include <random>

using namespace hci_admission;

namespace {
std::string as_json_string(std::string_view text) {
  std::string out = "prefix:";
  append_json_string(out, text);
  return out;
}
}  // namespace

TEST_CASE("append_json_string writes what nlohmann writes, escapes at any offset", "[json_write]") {
  std::vector<std::string> texts = {"",
                                    "plain",
                                    "node-role.kubernetes.io/control-plane",
                                    "é😀 UTF-8 passes through",
                                    "\x7f is not escaped",
                                    std::string(1, '\0') + "nul"};
  // Every byte that needs escaping, at every offset within and across the
  // 16-byte blocks the fast path reads, and at the very end.
  for (const char c : std::string("\"\\\n\r\t\b\f\x01\x1f", 9)) {
    for (size_t at = 0; at < 40; ++at) {
      std::string t(40, 'a');
      t[at] = c;
      texts.push_back(t);
      texts.push_back(t.substr(0, at + 1));
    }
  }
  for (const auto &t : texts) {
    INFO("text: " << Json(t).dump());
    CHECK(as_json_string(t) == "prefix:" + Json(t).dump());
  }
}

TEST_CASE("append_base64 agrees with RFC 4648 and with decoding", "[base64]") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foob") == "Zm9vYg==");
  CHECK(base64_encode("fooba") == "Zm9vYmE=");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  std::string out = "x";
  append_base64(out, "\xff\xfe\xfd");
  CHECK(out == "x//79");
  std::mt19937 random(7);
  for (size_t n = 0; n < 70; ++n) {
    std::string bytes(n, '\0');
    for (auto &b : bytes) b = static_cast<char>(random() & 0xff);
    const std::string text = base64_encode(bytes);
    CHECK(text.size() == 4 * ((n + 2) / 3));
    CHECK(base64_decode(text) == bytes);
  }
}
