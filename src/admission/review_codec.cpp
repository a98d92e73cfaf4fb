#include "hci_admission/admission/review_codec.hpp"

#include "hci_admission/common/base64.hpp"

#include <algorithm>
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
  std::string kind;
  JsonView request(std::string_view(), &*index);
  // A key given twice is refused: parsers disagree on which one counts
  // (Go's takes the last), and a review is never sent that way. Keys are
  // copied: an escaped key is unescaped into a buffer that lives only for
  // its callback (the fuzzer found the views dangling).
  std::vector<std::string> seen;
  auto once = [&seen](std::string_view key, const char *where) {
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      throw ReviewError("duplicate key \"" + std::string(where) + std::string(key) + "\"");
    }
    seen.emplace_back(key);
  };
  doc.for_each_member([&](std::string_view key, JsonView v) {
    if (key == "apiVersion" || key == "kind" || key == "request") once(key, "");
    if (key == "apiVersion") {
      out.api_version = as_string(v, "apiVersion");
    } else if (key == "kind") {
      kind = as_string(v, "kind");
    } else if (key == "request") {
      if (!v.is_null()) require_object(v, "request");
      request = v;
    }
  });
  if (out.api_version != kV1 && out.api_version != kV1beta1) {
    throw ReviewError("unsupported apiVersion \"" + out.api_version + "\" (want " + std::string(kV1) +
                      " or " + std::string(kV1beta1) + ")");
  }
  if (kind != "AdmissionReview") throw ReviewError("kind is \"" + kind + "\", want AdmissionReview");
  if (!request.is_object()) throw ReviewError("AdmissionReview has no request");

  AdmissionRequest &r = out.request;
  seen.clear();
  request.for_each_member([&](std::string_view key, JsonView v) {
    once(key, "request.");
    if (key == "uid") {
      r.uid = as_string(v, "request.uid");
    } else if (key == "kind" || key == "resource") {
      if (v.is_null()) return;
      const std::string where = "request." + std::string(key);
      require_object(v, where);
      std::string a, b, c;
      const bool is_kind = key == "kind";
      v.for_each_member([&](std::string_view k, JsonView m) {
        if (k == "group") a = as_string(m, where + ".group");
        if (k == "version") b = as_string(m, where + ".version");
        if (k == (is_kind ? "kind" : "resource")) c = as_string(m, where + "." + std::string(k));
      });
      if (is_kind) {
        r.kind = {a, b, c};
      } else {
        r.resource = {a, b, c};
      }
    } else if (key == "subResource") {
      r.sub_resource = as_string(v, "request.subResource");
    } else if (key == "name") {
      r.name = as_string(v, "request.name");
    } else if (key == "namespace") {
      r.namespace_name = as_string(v, "request.namespace");
    } else if (key == "operation") {
      r.operation = as_string(v, "request.operation");
    } else if (key == "userInfo") {
      if (v.is_null()) return;
      require_object(v, "request.userInfo");
      v.for_each_member([&](std::string_view k, JsonView m) {
        if (k == "username") r.username = as_string(m, "request.userInfo.username");
      });
    } else if (key == "dryRun") {
      if (!v.is_null() && !v.is_bool()) throw ReviewError("request.dryRun must be a boolean");
      r.dry_run = v.raw() == "true";
    } else if (key == "object") {
      r.object = fields.object.keeps_nothing() ? Json() : fields.object.extract(v);
    } else if (key == "oldObject") {
      r.old_object = fields.old_object.keeps_nothing() ? Json() : fields.old_object.extract(v);
    }
  });
  if (r.uid.empty()) throw ReviewError("request.uid is missing or empty");
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
