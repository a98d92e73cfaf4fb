// libFuzzer target: the kubeconfig YAML reader and base64 decoding.
#include <cstdint>
#include "hci_admission/common/base64.hpp"
#include "hci_admission/kube/kube_client.hpp"
using namespace hci_admission;
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  try {
    parse_kubeconfig_yaml(std::string(reinterpret_cast<const char *>(d), n));
  } catch (const std::exception &) {
  }
  try {
    base64_decode(std::string(reinterpret_cast<const char *>(d), n));
  } catch (const std::exception &) {
  }
  return 0;
}
