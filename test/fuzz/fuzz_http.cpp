// libFuzzer target: the HTTP/1.1 request parser.
#include <cstdint>
#include "hci_admission/https_server.hpp"
using namespace hci_admission;
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  HttpLimits l{1024, 4096};
  auto p = parse_http_request(std::string_view(reinterpret_cast<const char *>(d), n), l);
  if (p.status == HttpParse::Status::Complete) {
    volatile size_t x = p.body().size() + p.method.size() + p.path.size();
    (void)x;
  }
  return 0;
}
