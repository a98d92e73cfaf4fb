// libFuzzer target: the HTTP/1.1 request parser, fed its input whole and in
// pieces whose ends the input's last bytes choose; both must agree.
#include <cstdint>
#include <cstdlib>
#include <string>
#include "hci_admission/net/https_server.hpp"
using namespace hci_admission;
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  const HttpLimits l{1024, 4096};
  // Up to 4 trailing bytes pick the piece sizes; the rest is the request.
  const size_t seeds = n < 4 ? n : 4;
  const std::string in(reinterpret_cast<const char *>(d), n - seeds);
  std::string whole_buffer = in;
  const HttpParse whole = parse_http_request(whole_buffer, l);
  std::string buffer;
  buffer.reserve(in.size());  // appending never moves what the views point at
  HttpRequestParser parser(l);
  size_t fed = 0, piece = 0;
  while (fed < in.size() && parser.request().status == HttpParse::Status::Incomplete) {
    const size_t step = 1 + (seeds ? d[n - seeds + piece++ % seeds] : 0);
    const size_t take = std::min(step, in.size() - fed);
    buffer.append(in, fed, take);
    fed += take;
    parser.parse(buffer);
  }
  buffer.append(in, fed, std::string::npos);  // what follows the request
  parser.parse(buffer);
  const HttpParse &split = parser.request();
  if (split.status != whole.status || split.error_status != whole.error_status) std::abort();
  if (whole.status == HttpParse::Status::Complete &&
      (split.body() != whole.body() || split.path != whole.path || split.method != whole.method ||
       buffer.compare(split.consumed, std::string::npos, whole_buffer, whole.consumed, std::string::npos) !=
           0)) {
    std::abort();
  }
  return 0;
}
