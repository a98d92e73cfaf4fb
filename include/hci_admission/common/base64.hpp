// Standard base64 (RFC 4648 section 4), as Kubernetes writes Secret data,
// caBundle and JSON Patch in an AdmissionReview.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace hci_admission {

class Base64Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Appends the encoding of `data` to `out` (padded, no line breaks).
void append_base64(std::string &out, std::string_view data);
std::string base64_encode(std::string_view data);
// With or without padding and line breaks; throws Base64Error
// (a std::runtime_error) for anything else.
std::string base64_decode(std::string_view text);

}  // namespace hci_admission
