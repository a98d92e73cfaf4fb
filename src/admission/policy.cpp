#include "hci_admission/admission/policy.hpp"

#include <algorithm>

namespace hci_admission {

std::string GroupVersionKind::to_string() const {
  std::string out;
  if (!group.empty()) out += group + "/";
  if (!version.empty()) out += version + " ";
  out += kind.empty() ? "<no kind>" : kind;
  return out;
}

Decision Decision::deny(int code, std::string reason, std::string message) {
  Decision d;
  d.allowed = false;
  d.code = code;
  d.reason = std::move(reason);
  d.message = std::move(message);
  return d;
}

Decision &Decision::warn(std::string warning) {
  warnings.push_back(std::move(warning));
  return *this;
}

std::string PolicySpec::path() const {
  return (type == PolicyType::Mutating ? "/mutate/" : "/validate/") + name;
}

bool AdmissionRule::covers(const AdmissionRequest &request) const {
  if (request.kind.group != group || request.kind.kind != kind || !request.sub_resource.empty()) return false;
  const auto &r = request.resource;
  // kube-apiserver always names the resource; a hand-made review without
  // one is judged by its kind alone, as before rules were declared.
  if (r.group.empty() && r.version.empty() && r.resource.empty()) return true;
  return r.group == group && r.resource == resource &&
         std::find(versions.begin(), versions.end(), r.version) != versions.end();
}

bool AdmissionRule::matches(const AdmissionRequest &request) const {
  return covers(request) &&
         std::find(operations.begin(), operations.end(), request.operation) != operations.end();
}

std::string AdmissionRule::describe_kind() const {
  std::string out = group.empty() ? "core" : group;
  for (size_t i = 0; i < versions.size(); ++i) out += (i ? "," : "/") + versions[i];
  return out + " " + kind;
}

Json AdmissionRule::to_webhook_rule() const {
  return {{"apiGroups", {group}},
          {"apiVersions", versions},
          {"operations", operations},
          {"resources", {resource}},
          {"scope", scope}};
}

std::optional<Decision> PolicySpec::screen(const AdmissionRequest &request) const {
  bool covered = false;
  for (const auto &rule : rules) {
    if (rule.matches(request)) return std::nullopt;
    covered = covered || rule.covers(request);
  }
  // Sent an operation it does not handle: nothing to do.
  if (covered) return Decision::allow();
  std::string expected;
  for (const auto &rule : rules) expected += (expected.empty() ? "" : " or ") + rule.describe_kind();
  std::string got = request.kind.to_string();
  if (!request.resource.resource.empty()) {
    got += " (" + request.resource.resource +
           (request.sub_resource.empty() ? "" : "/" + request.sub_resource) + ")";
  }
  return Decision::allow().warn(name + " expects " + expected + ", got " + got + "; left unchanged");
}

}  // namespace hci_admission
