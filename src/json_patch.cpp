#include "hci_admission/json_patch.hpp"

#include <algorithm>
#include <cstdint>

namespace hci_admission {

std::string escape_pointer_token(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string join_pointer(std::string_view base, std::string_view token) {
  std::string out(base);
  out += '/';
  out += escape_pointer_token(token);
  return out;
}

std::string join_pointer(std::string_view base, size_t index) {
  std::string out(base);
  out += '/';
  out += std::to_string(index);
  return out;
}

void JsonPatch::add(std::string path, Json value) {
  ops_.push_back({"add", std::move(path), std::move(value)});
}

void JsonPatch::replace(std::string path, Json value) {
  ops_.push_back({"replace", std::move(path), std::move(value)});
}

void JsonPatch::remove(std::string path) { ops_.push_back({"remove", std::move(path), nullptr}); }

namespace {
// Bytes that must be escaped in a JSON string.
struct EscapeTable {
  bool escape[256];
  constexpr EscapeTable() : escape() {
    for (int c = 0; c < 0x20; ++c) escape[c] = true;
    escape[static_cast<unsigned char>('"')] = true;
    escape[static_cast<unsigned char>('\\')] = true;
  }
};
constexpr EscapeTable kEscape;
}  // namespace

void append_json_string(std::string &out, std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  out += '"';
  size_t plain = 0;  // start of the run not yet copied
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (!kEscape.escape[c]) continue;
    out.append(text.data() + plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
  }
  out.append(text.data() + plain, text.size() - plain);
  out += '"';
}

void append_json(std::string &out, const Json &value) {
  switch (value.type()) {
    case Json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, it.key());
        out += ':';
        append_json(out, it.value());
      }
      out += '}';
      return;
    }
    case Json::value_t::array: {
      out += '[';
      for (size_t i = 0; i < value.size(); ++i) {
        if (i) out += ',';
        append_json(out, value[i]);
      }
      out += ']';
      return;
    }
    case Json::value_t::string:
      append_json_string(out, value.get_ref<const std::string &>());
      return;
    case Json::value_t::boolean:
      out += value.get<bool>() ? "true" : "false";
      return;
    case Json::value_t::number_integer:
      out += std::to_string(value.get<int64_t>());
      return;
    case Json::value_t::number_unsigned:
      out += std::to_string(value.get<uint64_t>());
      return;
    case Json::value_t::null:
      out += "null";
      return;
    default:
      out += value.dump();
      return;  // floats and binary: nlohmann's exact formatting
  }
}

void JsonPatch::diff(const std::string &path, const Json &before, Json &&after) {
  if (before == after) return;
  if (before.is_object() && after.is_object()) {
    for (auto it = before.begin(); it != before.end(); ++it) {
      if (!after.contains(it.key())) remove(join_pointer(path, it.key()));
    }
    for (auto it = after.begin(); it != after.end(); ++it) {
      auto old = before.find(it.key());
      if (old == before.end()) {
        add(join_pointer(path, it.key()), std::move(it.value()));
      } else if (old->type() == it->type() && (old->is_object() || old->is_array())) {
        diff(join_pointer(path, it.key()), *old, std::move(*it));
      } else if (*old != *it) {
        // "add" onto an existing member overwrites it.
        add(join_pointer(path, it.key()), std::move(it.value()));
      }
    }
    return;
  }
  if (before.is_array() && after.is_array()) {
    const size_t common = std::min(before.size(), after.size());
    for (size_t i = 0; i < common; ++i) {
      const Json &b = before[i];
      Json &a = after[i];
      if (b == a) continue;
      if (b.type() == a.type() && (b.is_object() || b.is_array())) {
        diff(join_pointer(path, i), b, std::move(a));
      } else {
        replace(join_pointer(path, i), std::move(a));
      }
    }
    for (size_t i = common; i < after.size(); ++i) add(path + "/-", std::move(after[i]));
    // From the end, so that earlier indexes stay valid.
    for (size_t i = before.size(); i > common; --i) remove(join_pointer(path, i - 1));
    return;
  }
  if (path.empty()) {
    replace(path, std::move(after));
  } else {
    add(path, std::move(after));
  }
}

Json JsonPatch::to_json() const {
  Json out = Json::array();
  for (const auto &op : ops_) {
    Json o = {{"op", op.op}, {"path", op.path}};
    if (op.op != "remove") o["value"] = op.value;
    out.push_back(std::move(o));
  }
  return out;
}

std::string JsonPatch::dump() const {
  std::string out;
  out.reserve(1024);
  dump_to(out);
  return out;
}

void JsonPatch::dump_to(std::string &out) const {
  out += '[';
  bool first = true;
  for (const auto &op : ops_) {
    if (!first) out += ',';
    first = false;
    out += "{\"op\":\"";
    out += op.op;
    out += "\",\"path\":";
    append_json_string(out, op.path);
    if (op.op != "remove") {
      out += ",\"value\":";
      append_json(out, op.value);
    }
    out += '}';
  }
  out += ']';
}

}  // namespace hci_admission
