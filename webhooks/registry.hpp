// Every policy the binary ships. Adding one: a file pair in webhooks/ and
// one line in registry.cpp.
#pragma once

#include "hci_admission/admission/policy.hpp"

#include <vector>

namespace hci_admission::webhooks {

std::vector<PolicySpec> builtin_policies();

}  // namespace hci_admission::webhooks
