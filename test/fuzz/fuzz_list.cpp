// libFuzzer target: LIST answers from the Kubernetes API (validation,
// continue token, items cut down to the fields the upgrade guard keeps).
#include <cstdint>
#include "hci_admission/kube/kube_client.hpp"
using namespace hci_admission;
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  static const FieldMask mask =
      FieldMask::of({"/metadata/name", "/spec/numberOfReplicas", "/status/state",
                     "/status/kubernetesStatus/pvcName", "/status/kubernetesStatus/namespace"});
  std::vector<Json> items;
  try {
    parse_list_page(
        std::string_view(reinterpret_cast<const char *>(d), n), mask, "fuzz",
        [&](Json &&item) { items.push_back(std::move(item)); }, [](const std::string &) {});
    for (const auto &item : items) item.dump();
  } catch (const ClusterReadError &) {
  }
  return 0;
}
