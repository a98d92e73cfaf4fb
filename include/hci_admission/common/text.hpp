// Small text helpers shared by the flags and the policies.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hci_admission {

// Without leading and trailing white space.
std::string trim(std::string s);

// A whole decimal number without sign or spaces, 1 to 18 digits (so it
// cannot overflow); false for anything else. Content-Length, counts in
// flags, generations in annotations.
bool parse_decimal(std::string_view text, uint64_t &out);

// A comma-separated list: items trimmed, empty ones dropped ("a, b,," is
// {"a", "b"}), the same for every flag that takes a list.
std::vector<std::string> split_list(const std::string &text);

}  // namespace hci_admission
