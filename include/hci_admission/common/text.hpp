// Small text helpers shared by the flags and the policies.
#pragma once

#include <string>
#include <vector>

namespace hci_admission {

// Without leading and trailing white space.
std::string trim(std::string s);

// A comma-separated list: items trimmed, empty ones dropped ("a, b,," is
// {"a", "b"}), the same for every flag that takes a list.
std::vector<std::string> split_list(const std::string &text);

}  // namespace hci_admission
