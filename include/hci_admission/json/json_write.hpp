// Writing JSON text and JSON Pointers without building a tree first.
#pragma once

#include "hci_admission/json/json.hpp"

#include <string>
#include <string_view>

namespace hci_admission {

// Escapes one reference token: "~" becomes "~0" and "/" becomes "~1", so a
// label key such as "node-role.kubernetes.io/master" stays one segment.
std::string escape_pointer_token(std::string_view token);

// Appends one escaped token to a JSON Pointer.
std::string join_pointer(std::string_view base, std::string_view token);
std::string join_pointer(std::string_view base, size_t index);

// Appends `text` to `out` as a JSON string literal. `text` must be UTF-8.
void append_json_string(std::string &out, std::string_view text);
// Appends `value` to `out` as compact JSON; the same text as
// value.dump(), written several times faster (nlohmann's serializer
// decodes UTF-8 byte by byte).
void append_json(std::string &out, const Json &value);

}  // namespace hci_admission
