#include "hci_admission/admission/review_codec.hpp"

#include "hci_admission/common/base64.hpp"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace hci_admission {
namespace {

constexpr std::string_view kV1 = "admission.k8s.io/v1";
constexpr std::string_view kV1beta1 = "admission.k8s.io/v1beta1";

namespace dom = simdjson::dom;

// A string member: null reads as empty; any other type is refused, so that
// "uid": 7 is an error rather than a misread.
std::string as_string(dom::element v, const char *where) {
  if (v.is_null()) return {};
  if (!v.is_string()) throw ReviewError(std::string(where) + " must be a string");
  return std::string(v.get_string().value_unsafe());
}

// The same, written into `out` (no temporary to move from).
void read_string(dom::element v, const char *where, std::string &out) {
  if (v.is_string()) {
    // Into a field not yet read (the usual case) an append: assign's
    // general replace took 60 instructions a field (callgrind).
    const std::string_view text = v.get_string().value_unsafe();
    if (out.empty()) {
      out.append(text);
    } else {
      out.assign(text);
    }
  } else if (v.is_null()) {
    out.clear();
  } else {
    throw ReviewError(std::string(where) + " must be a string");
  }
}

void require_object(dom::element v, const char *where) {
  if (!v.is_object()) throw ReviewError(std::string(where) + " must be an object");
}

// A key given twice is refused: parsers disagree on which one counts
// (Go's takes the last), and a review is never sent that way. A 64-bit
// filter of (length, first and last byte) sends only a likely repeat to a
// look back over the members before it. Keeping each key in a list and
// comparing it with all before took 1.2k of the CSI Pod review's 108k
// instructions (callgrind). Keys made to share bits (a body of 7 MiB holds
// 600k) would make the look back quadratic, so past a budget the keys are
// gathered and sorted once at the end instead (not hashed: libstdc++'s
// string hash has a fixed seed, so keys can be made to collide there too).
class RepeatedKeys {
 public:
  RepeatedKeys(dom::object object, const char *where) : object_(object), where_(where) {}

  // Throws if `key`, at `at`, came before it in the object (past the
  // budget: finish() throws). The usual key, with a bit of its own, takes
  // the inline part alone.
  void check(std::string_view key, dom::object::iterator at) {
    // These factors give the 15 keys Kubernetes sends in a request 15
    // bits of their own.
    const size_t hash = key.empty() ? 0
                                    : key.size() * 3 + size_t{static_cast<unsigned char>(key.front())} * 2 +
                                          size_t{static_cast<unsigned char>(key.back())};
    const uint64_t bit = uint64_t{1} << (hash & 63);
    if ((filter_ & bit) != 0 || gathering_) look_back(key, at);
    filter_ |= bit;
  }

  // After the last member: a repeat among the gathered keys.
  void finish() {
    if (!gathering_) return;
    std::sort(gathered_.begin(), gathered_.end());
    const auto twice = std::adjacent_find(gathered_.begin(), gathered_.end());
    if (twice != gathered_.end()) throw repeated(*twice);
  }

 private:
  static constexpr size_t kLookBackBudget = 4096;

  __attribute__((noinline)) void look_back(std::string_view key, dom::object::iterator at) {
    if (gathering_) {
      gathered_.push_back(key);
      return;
    }
    for (auto before = object_.begin(); before != at; ++before, ++looked_back_) {
      if (before.key() == key) throw repeated(key);
    }
    if (looked_back_ > kLookBackBudget) {
      gathering_ = true;
      for (auto before = object_.begin(); before != at; ++before) gathered_.push_back(before.key());
      gathered_.push_back(key);
    }
  }

  ReviewError repeated(std::string_view key) const {
    return ReviewError("duplicate key \"" + std::string(where_) + std::string(key) + "\"");
  }

  dom::object object_;
  const char *where_;
  uint64_t filter_ = 0;
  size_t looked_back_ = 0;
  bool gathering_ = false;
  std::vector<std::string_view> gathered_;  // once over budget
};

// apiVersion, kind and request of the AdmissionReview; returns the request.
dom::element decode_envelope(dom::element doc, std::string &api_version) {
  std::string kind;
  dom::element request;
  bool has_request = false;
  const dom::object envelope = doc.get_object().value_unsafe();
  RepeatedKeys repeated(envelope, "");
  for (auto it = envelope.begin(), end = envelope.end(); it != end; ++it) {
    const std::string_view key = it.key();
    repeated.check(key, it);
    if (key == "apiVersion") {
      read_string(it.value(), "apiVersion", api_version);
    } else if (key == "kind") {
      read_string(it.value(), "kind", kind);
    } else if (key == "request") {
      if (!it.value().is_null()) require_object(it.value(), "request");
      request = it.value();
      has_request = true;
    }
  }
  repeated.finish();
  if (api_version != kV1 && api_version != kV1beta1) {
    throw ReviewError("unsupported apiVersion \"" + api_version + "\" (want " + std::string(kV1) + " or " +
                      std::string(kV1beta1) + ")");
  }
  if (kind != "AdmissionReview") throw ReviewError("kind is \"" + kind + "\", want AdmissionReview");
  if (!has_request || !request.is_object()) throw ReviewError("AdmissionReview has no request");
  return request;
}

// request.kind ({group, version, kind}) or request.resource ({group,
// version, resource}), into the three strings, in that order.
void decode_group_version(dom::element v, const char *where, const char *last,
                          const std::array<std::string *, 3> &into) {
  require_object(v, where);
  for (const dom::key_value_pair m : dom::object(v.get_object().value_unsafe())) {
    const int i = m.key == "group" ? 0 : m.key == "version" ? 1 : m.key == last ? 2 : -1;
    if (i < 0) continue;
    // The field's name is written out only for an error.
    if (!m.value.is_null() && !m.value.is_string()) {
      throw ReviewError(std::string(where) + "." + std::string(m.key) + " must be a string");
    }
    read_string(m.value, where, *into[static_cast<size_t>(i)]);
  }
}

void decode_user_info(dom::element v, AdmissionRequest &r) {
  require_object(v, "request.userInfo");
  for (const dom::key_value_pair m : dom::object(v.get_object().value_unsafe())) {
    if (m.key == "username") {
      read_string(m.value, "request.userInfo.username", r.username);
    } else if (m.key == "groups" && !m.value.is_null()) {
      if (!m.value.is_array()) throw ReviewError("request.userInfo.groups must be a list");
      const dom::array groups = m.value.get_array().value_unsafe();
      r.groups.reserve(groups.size());  // one allocation, where growing took three for the usual three
      for (const dom::element g : groups) {
        r.groups.push_back(as_string(g, "request.userInfo.groups[]"));
      }
    }
  }
}

void decode_request_member(std::string_view key, dom::element v, AdmissionRequest &r,
                           const ObjectFields &fields) {
  if (key == "uid") {
    read_string(v, "request.uid", r.uid);
  } else if (key == "kind" && !v.is_null()) {
    r.kind = {};
    decode_group_version(v, "request.kind", "kind", {&r.kind.group, &r.kind.version, &r.kind.kind});
  } else if (key == "resource" && !v.is_null()) {
    r.resource = {};
    decode_group_version(v, "request.resource", "resource",
                         {&r.resource.group, &r.resource.version, &r.resource.resource});
  } else if (key == "subResource") {
    read_string(v, "request.subResource", r.sub_resource);
  } else if (key == "name") {
    read_string(v, "request.name", r.name);
  } else if (key == "namespace") {
    read_string(v, "request.namespace", r.namespace_name);
  } else if (key == "operation") {
    read_string(v, "request.operation", r.operation);
  } else if (key == "userInfo" && fields.user_info && !v.is_null()) {
    decode_user_info(v, r);
  } else if (key == "dryRun") {
    if (!v.is_null() && !v.is_bool()) throw ReviewError("request.dryRun must be a boolean");
    r.dry_run = v.is_bool() && v.get_bool().value_unsafe();
  } else if (key == "object") {
    if (fields.object.keeps_nothing()) return;
    if (fields.views) {
      r.object_view = JsonView(v, &fields.object);
    } else {
      r.object = fields.object.extract(v);
    }
  } else if (key == "oldObject") {
    if (fields.old_object.keeps_nothing()) return;
    if (fields.views) {
      r.old_object_view = JsonView(v, &fields.old_object);
    } else {
      r.old_object = fields.old_object.extract(v);
    }
  }
}

}  // namespace

DecodedReview decode_review(std::string_view body, const ObjectFields &fields, bool own_parser,
                            size_t readable_after) {
  std::unique_ptr<ParsedJson> parsed;
  try {
    if (own_parser) {
      parsed = std::make_unique<ParsedJson>(body, ParsedJson::OwnParser{});
    } else if (readable_after >= kJsonPadding) {
      parsed = std::make_unique<ParsedJson>(PaddedText{body});
    } else {
      parsed = std::make_unique<ParsedJson>(body);
    }
  } catch (const JsonSyntaxError &e) {
    throw ReviewError(std::string("request body is not valid JSON: ") + e.what());
  } catch (const JsonTooLarge &e) {
    throw ReviewError(std::string("request body cannot be read: ") + e.what());
  }
  const dom::element doc = parsed->root();
  if (!doc.is_object()) throw ReviewError("request body is not a JSON object");
  DecodedReview out;
  const dom::element request = decode_envelope(doc, out.api_version);
  const dom::object members = request.get_object().value_unsafe();
  RepeatedKeys repeated(members, "request.");
  for (auto it = members.begin(), end = members.end(); it != end; ++it) {
    const std::string_view key = it.key();
    repeated.check(key, it);
    decode_request_member(key, it.value(), out.request, fields);
  }
  repeated.finish();
  if (out.request.uid.empty()) throw ReviewError("request.uid is missing or empty");
  if (fields.views) out.document = std::move(parsed);
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

namespace {

// The patch in base64, valid until the thread's next call. Pods of one
// template get the same patch (the CSI controller's replicas, a KubeVirt
// CR's updates), so each thread keeps its last patch up to 4 KiB and the
// base64 of it: encoding the CSI Pod's 1 KB patch was 6.5k of 115k
// instructions a review, comparing it a few hundred. A patch of values
// all written out beforehand (RenderedJson) is compared by its operations,
// without being written at all: writing it took 1.8k of 107k.
std::string_view patch_base64(const JsonPatch &patch) {
  constexpr size_t kKept = 4096;
  struct Memo {
    JsonPatch rendered;  // the last patch, when all its values were rendered
    std::string text;    // the last patch written
    std::string base64;  // of `text`
  };
  thread_local Memo last;
  thread_local std::string text, large;
  if (!last.rendered.empty() && patch.same_rendered(last.rendered)) return last.base64;
  text.clear();
  if (text.capacity() > (1u << 20)) text.shrink_to_fit();
  patch.dump_to(text);
  if (text.size() > kKept) {
    large.clear();
    if (large.capacity() > (1u << 22)) large.shrink_to_fit();
    append_base64(large, text);
    return large;
  }
  // Each part of the memo is set only once what it stands for is whole,
  // so a throw (bad_alloc) midway leaves no base64 under another's name.
  last.rendered = JsonPatch();
  if (text != last.text) {
    last.text.clear();
    last.base64.clear();
    append_base64(last.base64, text);
    last.text.assign(text);
  }
  if (patch.all_rendered()) {
    JsonPatch kept = patch;
    last.rendered = std::move(kept);
  }
  return last.base64;
}

}  // namespace

std::string encode_review(const std::string &request_api_version, const std::string &uid,
                          const Decision &decision) {
  // Written directly: the envelope is small and fixed, and building it as a
  // tree first cost more than the rest of the response (measured).
  // Sized once: growing a 2 KB answer step by step cost four reallocations.
  // The patch is written into buffers each thread keeps: large
  // allocations per review cost more than the encoding (callgrind).
  const std::string_view patch =
      decision.allowed && !decision.patch.empty() ? patch_base64(decision.patch) : std::string_view();
  std::string out;
  out.reserve(320 + patch.size() + decision.message.size());
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
    out += patch;
    out += '"';
  }
  out += "}}";
  return out;
}

}  // namespace hci_admission
