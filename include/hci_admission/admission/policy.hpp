// The contract between the server core and a policy: a policy receives an
// AdmissionRequest and returns a Decision. It never sees HTTP or TLS.
#pragma once

#include "hci_admission/admission/json_patch.hpp"
#include "hci_admission/kube/cluster_view.hpp"

#include "hci_admission/json/json.hpp"
#include "hci_admission/json/json_scan.hpp"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace hci_admission {

struct GroupVersionKind {
  std::string group;
  std::string version;
  std::string kind;

  // "Pod" for the core group, "kubevirt.io/v1 KubeVirt" otherwise.
  std::string to_string() const;
};

struct GroupVersionResource {
  std::string group;
  std::string version;
  std::string resource;
};

// The fields of an AdmissionReview request that policies read.
struct AdmissionRequest {
  std::string uid;
  GroupVersionKind kind;
  GroupVersionResource resource;
  std::string sub_resource;
  std::string name;
  std::string namespace_name;
  std::string operation;  // CREATE, UPDATE, DELETE or CONNECT
  std::string username;
  std::vector<std::string> groups;  // userInfo.groups
  bool dry_run = false;
  Json object;      // null when the review carries none
  Json old_object;  // null when the review carries none
  // The same as views into the parsed review, for a policy whose spec
  // says reads_views (its trees above are then left null); absent when the
  // review carries none. Valid during review() only.
  JsonView object_view;
  JsonView old_object_view;
  // When the answer is due: before kube-apiserver's own timeout for the
  // call, so that a slow cluster read ends in our message, not its.
  Deadline deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
};

// One entry of metav1.Status details.causes.
struct StatusCause {
  std::string type;
  std::string message;
  std::string field;
};

struct Decision {
  bool allowed = true;
  // Only read when denied: metav1.Status code, reason and message.
  int code = 0;
  std::string reason;
  std::string message;
  std::vector<StatusCause> causes;
  std::vector<std::string> warnings;
  JsonPatch patch;

  static Decision allow() { return Decision{}; }
  static Decision deny(int code, std::string reason, std::string message);

  Decision &warn(std::string warning);
};

enum class PolicyType { Mutating, Validating };

class Policy {
 public:
  virtual ~Policy() = default;
  virtual Decision review(const AdmissionRequest &request) const = 0;
  // For a policy that reads the cluster (PolicySpec::reads_cluster):
  // whether review() may read it for this request. Asked on an event loop,
  // so it must not block itself; when true, review() runs on a worker
  // thread, and when false it runs on the loop and must not read.
  virtual bool reads_cluster_for(const AdmissionRequest & /*request*/) const { return true; }
};

// Flags a policy adds to the command line, with their defaults.
struct PolicyOption {
  std::string flag;  // without the leading "--"
  std::string default_value;
  std::string help;
};

// What a policy is built from: its option values (defaults filled in).
class PolicyConfig {
 public:
  explicit PolicyConfig(std::map<std::string, std::string> values, const ClusterView *cluster = nullptr)
      : values_(std::move(values)), cluster_(cluster) {}
  // The value of one of the policy's own options; throws std::out_of_range
  // for an option the policy did not declare.
  const std::string &option(const std::string &flag) const { return values_.at(flag); }
  // The cluster, for a policy whose spec says reads_cluster; outlives the policy.
  const ClusterView *cluster() const { return cluster_; }
  // The same, for a policy that cannot work without it: throws
  // std::invalid_argument naming the ways to give it.
  const ClusterView &required_cluster() const {
    if (cluster_ == nullptr) {
      throw std::invalid_argument(
          "needs cluster access: --kubeconfig, in-cluster credentials, or --cluster-state for offline use");
    }
    return *cluster_;
  }

 private:
  std::map<std::string, std::string> values_;
  const ClusterView *cluster_;
};

// One rule of the webhook configuration that sends requests to a policy:
// a RuleWithOperations of admissionregistration.k8s.io/v1 with one group
// and one resource, plus the kind that resource's objects are.
struct AdmissionRule {
  std::vector<std::string> operations;  // CREATE, UPDATE, DELETE, CONNECT
  std::string group;                    // "" for the core group
  std::vector<std::string> versions;    // "v1"
  std::string resource;                 // plural: "pods"
  std::string kind;                     // "Pod"
  std::string scope = "Namespaced";     // "Namespaced", "Cluster" or "*"

  // The request is for this resource (any operation): group, version,
  // resource, no subresource, and an object of this kind.
  bool covers(const AdmissionRequest &request) const;
  bool matches(const AdmissionRequest &request) const;
  // "core/v1 Pod", "harvesterhci.io/v1beta1 Upgrade"
  std::string describe_kind() const;
  // As it is written in a webhook configuration's rules.
  Json to_webhook_rule() const;
};

// One CEL matchCondition of a webhook configuration: kube-apiserver calls
// the webhook only when every condition holds.
struct MatchCondition {
  std::string name;
  std::string expression;
};

// How a policy is registered: everything the server needs to route to it,
// document it and build it. Building throws std::invalid_argument when an
// option value is unusable.
struct PolicySpec {
  std::string name;  // URL segment: /mutate/<name> or /validate/<name>
  PolicyType type = PolicyType::Mutating;
  std::string summary;
  // What the policy handles, declared once: the router answers any other
  // request without calling the policy, --help prints them, and the
  // manifests test holds each webhook configuration to them
  // (hci-admission rules).
  std::vector<AdmissionRule> rules;
  // Conditions kube-apiserver evaluates before calling at all (CEL, GA in
  // Kubernetes 1.30), so that most requests never wait on the webhook; the
  // manifests test holds the webhook configuration to them.
  std::vector<MatchCondition> match_conditions;
  std::vector<PolicyOption> options;
  std::function<std::unique_ptr<Policy>(const PolicyConfig &)> build;
  // The parts of request.object and request.oldObject the policy reads, as
  // JSON Pointers ("/spec/affinity"); nothing else of them is parsed.
  // {""} is the whole object, {} none at all (left null).
  std::vector<std::string> object_fields{""};
  std::vector<std::string> old_object_fields{""};
  // True for a policy that reads request.object_view and old_object_view
  // (the same fields, no tree built) instead of object and old_object.
  // The views point into the parser the event loop keeps; a review that
  // goes on to a worker (reads_cluster) is parsed again with a parser of
  // its own first.
  bool reads_views = false;
  // False for a policy that never reads request.username and groups: they
  // are then left empty, and request.userInfo unread. A user's name and
  // groups took five allocations (1.1k of the CSI Pod review's 105k
  // instructions, callgrind) for policies that never look at them.
  bool reads_user_info = true;
  // True for a policy that reads the cluster: it is given a ClusterView,
  // and, for requests its reads_cluster_for() says may read, runs on a
  // worker thread instead of the connection's event loop because reading
  // may block.
  bool reads_cluster = false;
  // What it reads, for --help and for RBAC to match: "list nodes",
  // "list volumes.longhorn.io in longhorn-system".
  std::vector<std::string> cluster_reads;

  std::string path() const;
  // The router's answer to a request the rules do not match, without
  // calling the policy: an allow, with a warning when the request is not
  // even for the resource (a misconfigured webhook). Nothing when a rule
  // matches and the policy must decide.
  std::optional<Decision> screen(const AdmissionRequest &request) const;
};

}  // namespace hci_admission
