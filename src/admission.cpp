#include "hci_admission/admission.hpp"

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

}  // namespace hci_admission
