#include "upgrade_precheck.hpp"

#include "hci_admission/common/flags.hpp"
#include "hci_admission/json/json_write.hpp"
#include "hci_admission/kube/cluster_access.hpp"
#include "upgrade_guard.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace hci_admission::webhooks {
namespace {

// After "Usage: PROGRAM precheck [flags]".
constexpr const char *kDescription =
    "Says whether the upgrade guard would refuse a Harvester upgrade (an Upgrade or an UpgradePlan)\n"
    "created now, runs every check and lists what each looked at and what is in the way.\n"
    "Exit code 0: allowed; 1: refused (also when the cluster cannot be read); 2: bad flags.\n\n";

void print_text(const UpgradeGuard::Evaluation &result, const ClusterView &view,
                const std::string &longhorn_ns) {
  std::cout << "Upgrade precheck against " << view.describe() << "\n";
  if (result.nodes > 0) std::cout << "nodes: " << result.nodes << "\n";
  for (const auto &c : result.checks) {
    std::cout << "check " << c.name << ": " << to_string(c.state);
    if (c.state == UpgradeGuard::CheckState::Skipped && !c.message.empty())
      std::cout << " (" << c.message << ")";
    std::cout << "\n";
    if (c.name == UpgradeGuard::kSingleReplicaVolumes && c.state != UpgradeGuard::CheckState::NotRun &&
        c.state != UpgradeGuard::CheckState::Skipped) {
      size_t active = 0;
      for (const auto &v : result.single_replica) active += v.active;
      std::cout << "  single-replica volumes in " << longhorn_ns << ": " << result.single_replica.size()
                << " (" << active << " active)\n";
      if (!result.single_replica.empty()) {
        std::printf("  %-3s %-48s %-44s %s\n", "", "PVC", "VOLUME", "STATE");
        for (const auto &v : result.single_replica) {
          std::printf("  %-3s %-48s %-44s %s\n", v.offending ? "!" : "", v.pvc.c_str(), v.name.c_str(),
                      v.state.empty() ? "-" : v.state.c_str());
        }
      }
      continue;
    }
    for (const auto &o : c.objects) std::cout << "  ! " << o.object << ": " << o.reason << "\n";
  }
  const Decision &d = result.decision;
  for (const auto &w : d.warnings) std::cout << "warning: " << w << "\n";
  if (d.allowed) {
    std::cout << "ALLOWED: an upgrade created now would be admitted\n";
    return;
  }
  std::cout << "REFUSED: " << d.message << "\n";
  const auto &volumes = result.single_replica;
  if (std::any_of(volumes.begin(), volumes.end(), [](const auto &v) { return v.offending; })) {
    std::cout << "(! marks what causes the refusal)\n";
  }
}

Json to_json(const UpgradeGuard::Evaluation &result, const ClusterView &view) {
  Json checks = Json::array();
  for (const auto &c : result.checks) {
    Json objects = Json::array();
    for (const auto &o : c.objects) objects.push_back({{"name", o.object}, {"reason", o.reason}});
    checks.push_back(
        {{"name", c.name}, {"result", to_string(c.state)}, {"message", c.message}, {"objects", objects}});
  }
  Json volumes = Json::array();
  for (const auto &v : result.single_replica) {
    volumes.push_back({{"pvc", v.pvc},
                       {"volume", v.name},
                       {"state", v.state},
                       {"active", v.active},
                       {"offending", v.offending}});
  }
  const Decision &d = result.decision;
  Json out = {{"cluster", view.describe()},      {"allowed", d.allowed},
              {"nodes", result.nodes},           {"checks", checks},
              {"singleReplicaVolumes", volumes}, {"warnings", d.warnings}};
  if (!d.allowed) out["status"] = {{"code", d.code}, {"reason", d.reason}, {"message", d.message}};
  return out;
}

}  // namespace

int run_upgrade_precheck(const std::vector<std::string> &args, const std::string &program) {
  ClusterAccess access;
  access.home_kubeconfig = true;  // as kubectl: --kubeconfig, $KUBECONFIG, ~/.kube/config, in-cluster
  Json annotations = Json::object();
  UpgradeGuard::Namespaces namespaces;
  std::string output = "text";
  bool help = false;
  FlagSet flags{
      {"skip-single-replica-detached-vol", "VALUE",
       "as the annotation harvesterhci.io/skipSingleReplicaDetachedVol",
       [&](const std::string &v) { annotations[UpgradeGuard::kSkipDetachedAnnotation] = v; }},
      {"skip-webhook", "", "as the annotation harvesterhci.io/skipWebhook: \"true\"",
       [&](const std::string &) { annotations[UpgradeGuard::kSkipWebhookAnnotation] = "true"; }},
      {"skip-checks", "NAMES",
       "as the annotation hci-admission.io/skip-checks (kubevirt-placement, pod-disruption-budgets)",
       [&](const std::string &v) { annotations[UpgradeGuard::kSkipChecksAnnotation] = v; }},
      {"longhorn-namespace", "NS",
       "namespace of the Longhorn volumes and instance managers (default longhorn-system)",
       [&](const std::string &v) { namespaces.longhorn = v; }},
      {"kubevirt-namespace", "NS", "namespace of the KubeVirt CR (default harvester-system)",
       [&](const std::string &v) { namespaces.kubevirt = v; }},
      {"upgrade-namespace", "NS", "namespace of Harvester's v1 Upgrades (default harvester-system)",
       [&](const std::string &v) { namespaces.upgrades = v; }},
      {"output", "FORMAT", "text (default) or json, for automation",
       [&](const std::string &v) {
         if (v != "text" && v != "json") throw UsageError("--output is text or json, not \"" + v + "\"");
         output = v;
       }},
      {"help", "", "print this help and exit", [&](const std::string &) { help = true; }},
  };
  flags.add(cluster_flags(access));
  try {
    flags.parse(args, "see " + program + " precheck --help");
  } catch (const UsageError &e) {
    std::cerr << program << " precheck: " << e.what() << std::endl;
    return 2;
  }
  if (help) {
    std::cout << "Usage: " << program << " precheck [flags]\n\n"
              << kDescription << "Flags:\n"
              << flags.usage();
    return 0;
  }

  std::unique_ptr<ClusterView> view;
  try {
    view = open_cluster(access);
  } catch (const std::exception &e) {
    if (output == "json") {
      std::cout
          << Json{{"allowed", false}, {"error", std::string("cannot reach the cluster: ") + e.what()}}.dump()
          << std::endl;
    } else {
      std::cout << "REFUSED: cannot reach the cluster: " << e.what() << std::endl;
    }
    return 1;
  }
  if (!view) {
    std::cerr << program
              << " precheck: no cluster: give --kubeconfig, set KUBECONFIG, have ~/.kube/config, run in a "
                 "cluster, or use --cluster-state"
              << std::endl;
    return 2;
  }
  UpgradeGuard guard(*view, namespaces);
  const auto result = guard.evaluate(annotations, std::chrono::steady_clock::now() + access.read_timeout);
  if (output == "json") {
    std::cout << to_json(result, *view).dump(2) << std::endl;
  } else {
    print_text(result, *view, namespaces.longhorn);
  }
  return result.decision.allowed ? 0 : 1;
}

}  // namespace hci_admission::webhooks
