// libFuzzer target: the kubeconfig reader (yaml-cpp, then the conversion
// to Json with its value budget) and base64 decoding.
#include <cstdint>
#include "hci_admission/common/base64.hpp"
#include "hci_admission/kube/kubeconfig.hpp"
using namespace hci_admission;
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  try {
    parse_kubeconfig(std::string(reinterpret_cast<const char *>(d), n));
  } catch (const std::exception &) {
  }
  try {
    base64_decode(std::string(reinterpret_cast<const char *>(d), n));
  } catch (const std::exception &) {
  }
  return 0;
}
