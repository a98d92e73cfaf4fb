#include "hci_admission/admission/json_patch.hpp"

#include <algorithm>
#include <cstdint>

namespace hci_admission {

void JsonPatch::add(std::string path, Json value) {
  ops_.push_back({"add", std::move(path), std::move(value), {}});
}

void JsonPatch::add(std::string path, const RenderedJson &value) {
  // A policy adding written-out values usually adds a few: growing the
  // vector 1, 2, 4 moved them twice.
  if (ops_.empty()) ops_.reserve(4);
  ops_.push_back({"add", std::move(path), nullptr, value});
}

void JsonPatch::replace(std::string path, Json value) {
  ops_.push_back({"replace", std::move(path), std::move(value), {}});
}

void JsonPatch::remove(std::string path) { ops_.push_back({"remove", std::move(path), nullptr, {}}); }

void JsonPatch::diff(const std::string &path, const Json &before, Json &&after) {
  if (before == after) return;
  if (before.is_object() && after.is_object()) {
    for (auto it = before.begin(); it != before.end(); ++it) {
      if (!after.contains(it.key())) remove(join_pointer(path, it.key()));
    }
    for (auto it = after.begin(); it != after.end(); ++it) {
      auto old = before.find(it.key());
      if (old != before.end() && old->type() == it->type() && (old->is_object() || old->is_array())) {
        diff(join_pointer(path, it.key()), *old, std::move(*it));
      } else if (old == before.end() || *old != *it) {
        // "add" creates the member, or overwrites it.
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
    if (op.op != "remove") o["value"] = op.value_json();
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

bool JsonPatch::all_rendered() const {
  return std::all_of(ops_.begin(), ops_.end(),
                     [](const PatchOperation &op) { return op.rendered.has_value(); });
}

bool JsonPatch::same_rendered(const JsonPatch &other) const {
  if (ops_.size() != other.ops_.size()) return false;
  for (size_t i = 0; i < ops_.size(); ++i) {
    const PatchOperation &a = ops_[i];
    const PatchOperation &b = other.ops_[i];
    if (!a.rendered.has_value() || !a.rendered.shares_text_with(b.rendered) || a.op != b.op ||
        a.path != b.path) {
      return false;
    }
  }
  return true;
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
      if (op.rendered.has_value()) {
        out += op.rendered.text();
      } else {
        append_json(out, op.value);
      }
    }
    out += '}';
  }
  out += ']';
}

}  // namespace hci_admission
