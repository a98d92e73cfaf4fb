#include "hci_admission/admission/review_codec.hpp"

#include "hci_admission/common/base64.hpp"

#include <algorithm>
#include <array>
#include <optional>

namespace hci_admission {
namespace {

constexpr std::string_view kV1 = "admission.k8s.io/v1";
constexpr std::string_view kV1beta1 = "admission.k8s.io/v1beta1";

// A string member: null reads as empty; any other type is refused, so that
// "uid": 7 is an error rather than a misread.
std::string as_string(JsonView v, const std::string &where) {
  if (v.is_null()) return {};
  if (!v.is_string()) throw ReviewError(where + " must be a string");
  return v.string_value();
}

void require_object(JsonView v, const std::string &where) {
  if (!v.is_object()) throw ReviewError(where + " must be an object");
}

// A key given twice is refused: parsers disagree on which one counts
// (Go's takes the last), and a review is never sent that way. Keys are
// copied: an escaped key is unescaped into a buffer that lives only for
// its callback (the fuzzer found the views dangling).
class KeysSeenOnce {
 public:
  void operator()(std::string_view key, const char *where) {
    if (std::find(seen_.begin(), seen_.end(), key) != seen_.end()) {
      throw ReviewError("duplicate key \"" + std::string(where) + std::string(key) + "\"");
    }
    seen_.emplace_back(key);
  }

 private:
  std::vector<std::string> seen_;
};

// apiVersion, kind and request of the AdmissionReview; returns the request.
JsonView decode_envelope(const JsonView &doc, const JsonIndex &index, std::string &api_version) {
  std::string kind;
  JsonView request(std::string_view(), &index);
  KeysSeenOnce once;
  doc.for_each_member([&](std::string_view key, JsonView v) {
    if (key == "apiVersion") {
      once(key, "");
      api_version = as_string(v, "apiVersion");
    } else if (key == "kind") {
      once(key, "");
      kind = as_string(v, "kind");
    } else if (key == "request") {
      once(key, "");
      if (!v.is_null()) require_object(v, "request");
      request = v;
    }
  });
  if (api_version != kV1 && api_version != kV1beta1) {
    throw ReviewError("unsupported apiVersion \"" + api_version + "\" (want " + std::string(kV1) + " or " +
                      std::string(kV1beta1) + ")");
  }
  if (kind != "AdmissionReview") throw ReviewError("kind is \"" + kind + "\", want AdmissionReview");
  if (!request.is_object()) throw ReviewError("AdmissionReview has no request");
  return request;
}

// request.kind ({group, version, kind}) or request.resource ({group,
// version, resource}): the three strings, in that order.
std::array<std::string, 3> decode_group_version(JsonView v, const std::string &where, const char *last) {
  std::array<std::string, 3> out;
  require_object(v, where);
  v.for_each_member([&](std::string_view k, JsonView m) {
    if (k == "group") out[0] = as_string(m, where + ".group");
    if (k == "version") out[1] = as_string(m, where + ".version");
    if (k == last) out[2] = as_string(m, where + "." + last);
  });
  return out;
}

void decode_request_member(std::string_view key, JsonView v, AdmissionRequest &r,
                           const ObjectFields &fields) {
  if (key == "uid") {
    r.uid = as_string(v, "request.uid");
  } else if (key == "kind" && !v.is_null()) {
    auto [group, version, kind] = decode_group_version(v, "request.kind", "kind");
    r.kind = {std::move(group), std::move(version), std::move(kind)};
  } else if (key == "resource" && !v.is_null()) {
    auto [group, version, resource] = decode_group_version(v, "request.resource", "resource");
    r.resource = {std::move(group), std::move(version), std::move(resource)};
  } else if (key == "subResource") {
    r.sub_resource = as_string(v, "request.subResource");
  } else if (key == "name") {
    r.name = as_string(v, "request.name");
  } else if (key == "namespace") {
    r.namespace_name = as_string(v, "request.namespace");
  } else if (key == "operation") {
    r.operation = as_string(v, "request.operation");
  } else if (key == "userInfo" && !v.is_null()) {
    require_object(v, "request.userInfo");
    v.for_each_member([&](std::string_view k, JsonView m) {
      if (k == "username") {
        r.username = as_string(m, "request.userInfo.username");
      } else if (k == "groups" && !m.is_null()) {
        if (!m.is_array()) throw ReviewError("request.userInfo.groups must be a list");
        m.for_each_element(
            [&](JsonView g) { r.groups.push_back(as_string(g, "request.userInfo.groups[]")); });
      }
    });
  } else if (key == "dryRun") {
    if (!v.is_null() && !v.is_bool()) throw ReviewError("request.dryRun must be a boolean");
    r.dry_run = v.raw() == "true";
  } else if (key == "object") {
    r.object = fields.object.keeps_nothing() ? Json() : fields.object.extract(v);
  } else if (key == "oldObject") {
    r.old_object = fields.old_object.keeps_nothing() ? Json() : fields.old_object.extract(v);
  }
}

}  // namespace

DecodedReview decode_review(std::string_view body, const ObjectFields &fields) {
  std::optional<JsonIndex> index;
  try {
    index.emplace(validate_json(body));
  } catch (const JsonSyntaxError &e) {
    throw ReviewError(std::string("request body is not valid JSON: ") + e.what());
  }
  const JsonView doc(*index);
  if (!doc.is_object()) throw ReviewError("request body is not a JSON object");
  DecodedReview out;
  const JsonView request = decode_envelope(doc, *index, out.api_version);
  KeysSeenOnce once;
  request.for_each_member([&](std::string_view key, JsonView v) {
    once(key, "request.");
    decode_request_member(key, v, out.request, fields);
  });
  if (out.request.uid.empty()) throw ReviewError("request.uid is missing or empty");
  return out;
}

std::vector<std::string> limit_warnings(const std::vector<std::string> &warnings, size_t max_each,
                                        size_t max_total) {
  std::vector<std::string> out;
  size_t total = 0;
  for (size_t i = 0; i < warnings.size(); ++i) {
    std::string w;
    w.reserve(warnings[i].size());
    for (unsigned char c : warnings[i]) w += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
    if (w.size() > max_each) {
      // Cut on a UTF-8 character boundary.
      size_t cut = max_each - 3;
      while (cut > 0 && (static_cast<unsigned char>(w[cut]) & 0xC0) == 0x80) --cut;
      w = w.substr(0, cut) + "...";
    }
    const std::string more = "(" + std::to_string(warnings.size() - i) + " more warnings not shown)";
    // Keep room for the summary unless this is the last warning.
    const size_t reserve = (i + 1 < warnings.size()) ? more.size() + 16 : 0;
    if (total + w.size() + reserve > max_total) {
      out.push_back(more);
      break;
    }
    total += w.size();
    out.push_back(std::move(w));
  }
  return out;
}

std::string encode_review(const std::string &request_api_version, const std::string &uid,
                          const Decision &decision) {
  // Written directly: the envelope is small and fixed, and building it as a
  // tree first cost more than the rest of the response (measured).
  // Sized once: growing a 2 KB answer step by step cost four reallocations.
  // The patch is written into a buffer each thread keeps, and encoded
  // straight into the answer: large allocations per review cost more
  // than the encoding (callgrind).
  thread_local std::string patch;
  patch.clear();
  if (patch.capacity() > (1u << 20)) patch.shrink_to_fit();
  if (decision.allowed && !decision.patch.empty()) decision.patch.dump_to(patch);
  std::string out;
  out.reserve(320 + 4 * (patch.size() + 2) / 3 + decision.message.size());
  out += "{\"apiVersion\":";
  append_json_string(out, request_api_version);
  out += ",\"kind\":\"AdmissionReview\",\"response\":{\"uid\":";
  append_json_string(out, uid);
  out += decision.allowed ? ",\"allowed\":true" : ",\"allowed\":false";
  if (!decision.allowed) {
    out += ",\"status\":{\"metadata\":{},\"status\":\"Failure\",\"code\":";
    out += std::to_string(decision.code);
    out += ",\"reason\":";
    append_json_string(out, decision.reason);
    out += ",\"message\":";
    append_json_string(out, decision.message);
    if (!decision.causes.empty()) {
      out += ",\"details\":{\"causes\":[";
      for (size_t i = 0; i < decision.causes.size(); ++i) {
        const auto &c = decision.causes[i];
        out += i ? ",{\"reason\":" : "{\"reason\":";
        append_json_string(out, c.type);
        out += ",\"message\":";
        append_json_string(out, c.message);
        if (!c.field.empty()) {
          out += ",\"field\":";
          append_json_string(out, c.field);
        }
        out += '}';
      }
      out += "]}";
    }
    out += '}';
  }
  if (!decision.warnings.empty()) {
    out += ",\"warnings\":[";
    const auto warnings = limit_warnings(decision.warnings);
    for (size_t i = 0; i < warnings.size(); ++i) {
      if (i) out += ',';
      append_json_string(out, warnings[i]);
    }
    out += ']';
  }
  // A denial never carries a patch: kube-apiserver would not apply it.
  if (!patch.empty()) {
    out += ",\"patchType\":\"JSONPatch\",\"patch\":\"";
    append_base64(out, patch);
    out += '"';
  }
  out += "}}";
  return out;
}

}  // namespace hci_admission
