#include "upgrade_precheck.hpp"

#include "hci_admission/common/flags.hpp"
#include "hci_admission/kube/cluster_access.hpp"
#include "upgrade_guard.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace hci_admission::webhooks {
namespace {

constexpr const char *kUsage =
    "Usage: hci-admission precheck [flags]\n\n"
    "Says whether the upgrade guard would refuse a Harvester Upgrade created now, and lists every\n"
    "single-replica volume it looked at. Exit code 0: allowed; 1: refused (also when the cluster\n"
    "cannot be read); 2: bad flags.\n\n";

}  // namespace

int run_upgrade_precheck(const std::vector<std::string> &args) {
  ClusterAccess access;
  Json annotations = Json::object();
  std::string longhorn_namespace = "longhorn-system";
  bool help = false;
  FlagSet flags{
      {"skip-single-replica-detached-vol", "VALUE",
       "as the annotation harvesterhci.io/skipSingleReplicaDetachedVol",
       [&](const std::string &v) { annotations[UpgradeGuard::kSkipDetachedAnnotation] = v; }},
      {"skip-webhook", "", "as the annotation harvesterhci.io/skipWebhook: \"true\"",
       [&](const std::string &) { annotations[UpgradeGuard::kSkipWebhookAnnotation] = "true"; }},
      {"longhorn-namespace", "NS", "namespace of the Longhorn volumes (default longhorn-system)",
       [&](const std::string &v) { longhorn_namespace = v; }},
      {"help", "", "print this help and exit", [&](const std::string &) { help = true; }},
  };
  flags.add(cluster_flags(access));
  try {
    flags.parse(args, "see hci-admission precheck --help");
  } catch (const UsageError &e) {
    std::cerr << "hci-admission precheck: " << e.what() << std::endl;
    return 2;
  }
  if (help) {
    std::cout << kUsage << "Flags:\n" << flags.usage();
    return 0;
  }

  std::unique_ptr<ClusterView> view;
  try {
    view = open_cluster(access);
  } catch (const std::exception &e) {
    std::cout << "REFUSED: cannot reach the cluster: " << e.what() << std::endl;
    return 1;
  }
  if (!view) {
    std::cerr
        << "hci-admission precheck: no cluster: give --kubeconfig, set KUBECONFIG, run in a cluster, or "
           "use --cluster-state"
        << std::endl;
    return 2;
  }
  UpgradeGuard guard(*view, longhorn_namespace);
  const auto result = guard.evaluate(annotations, std::chrono::steady_clock::now() + access.read_timeout);
  const Decision &d = result.decision;

  std::cout << "Upgrade precheck against " << view->describe() << "\n";
  if (result.nodes > 0) std::cout << "nodes: " << result.nodes << "\n";
  size_t active = 0;
  for (const auto &v : result.single_replica) active += v.active;
  std::cout << "single-replica volumes in " << longhorn_namespace << ": " << result.single_replica.size()
            << " (" << active << " active)\n";
  if (!result.single_replica.empty()) {
    std::printf("  %-3s %-48s %-44s %s\n", "", "PVC", "VOLUME", "STATE");
    for (const auto &v : result.single_replica) {
      const bool offending = std::any_of(result.offending.begin(), result.offending.end(),
                                         [&](const auto &o) { return o.name == v.name; });
      std::printf("  %-3s %-48s %-44s %s\n", offending ? "!" : "", v.pvc.c_str(), v.name.c_str(),
                  v.state.empty() ? "-" : v.state.c_str());
    }
  }
  for (const auto &w : d.warnings) std::cout << "warning: " << w << "\n";
  if (d.allowed) {
    std::cout << "ALLOWED: an Upgrade created now would be admitted\n";
    return 0;
  }
  std::cout << "REFUSED: " << d.message << "\n";
  if (!result.offending.empty()) std::cout << "(! marks the volumes that cause the refusal)\n";
  return 1;
}

}  // namespace hci_admission::webhooks
