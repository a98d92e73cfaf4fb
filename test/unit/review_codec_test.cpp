#include "hci_admission/admission/review_codec.hpp"
#include "hci_admission/common/base64.hpp"
#include "hci_admission/json/json_scan.hpp"

#include <catch2/catch.hpp>

using namespace hci_admission;

namespace {
std::string review(const std::string &api_version, const Json &request) {
  return json_text(Json{{"apiVersion", api_version}, {"kind", "AdmissionReview"}, {"request", request}});
}
const Json kRequest = {
    {"uid", "705ab4f5-6393-11e8-b7cc-42010a800002"},
    {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
    {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
    {"subResource", "status"},
    {"name", "p"},
    {"namespace", "kube-system"},
    {"operation", "CREATE"},
    {"userInfo", {{"username", "alice"}, {"groups", {"a"}}}},
    {"object", {{"metadata", {{"name", "p"}, {"labels", {{"a", "b"}}}}}, {"spec", {{"x", 1}}}}},
    {"oldObject", nullptr},
    {"dryRun", true},
    {"options", nullptr}};
}  // namespace

TEST_CASE("decodes v1 and v1beta1 reviews", "[codec]") {
  for (const std::string version : {"admission.k8s.io/v1", "admission.k8s.io/v1beta1"}) {
    const DecodedReview d = decode_review(review(version, kRequest));
    CHECK(d.api_version == version);
    const AdmissionRequest &r = d.request;
    CHECK(r.uid == "705ab4f5-6393-11e8-b7cc-42010a800002");
    CHECK(r.kind.group.empty());
    CHECK(r.kind.version == "v1");
    CHECK(r.kind.kind == "Pod");
    CHECK(r.resource.resource == "pods");
    CHECK(r.sub_resource == "status");
    CHECK(r.name == "p");
    CHECK(r.namespace_name == "kube-system");
    CHECK(r.operation == "CREATE");
    CHECK(r.username == "alice");
    CHECK(r.dry_run);
    CHECK(r.object == kRequest["object"]);
    CHECK(r.old_object.is_null());
  }
}

TEST_CASE("a field mask parses only the parts asked for", "[codec]") {
  ObjectFields fields{FieldMask::of({"/metadata/labels", "/spec/missing"}), FieldMask::nothing()};
  Json req = kRequest;
  req["oldObject"] = {{"spec", 1}};
  const DecodedReview d = decode_review(review("admission.k8s.io/v1", req), fields);
  CHECK(d.request.object == Json{{"metadata", {{"labels", {{"a", "b"}}}}}, {"spec", Json::object()}});
  CHECK(d.request.old_object.is_null());
}

TEST_CASE("with views, the objects are read in place and no tree is built", "[codec]") {
  ObjectFields fields{FieldMask::of({"/metadata/labels"}), FieldMask::nothing(), true};
  Json req = kRequest;
  req["oldObject"] = {{"spec", 1}};
  const DecodedReview d = decode_review(review("admission.k8s.io/v1", req), fields);
  CHECK(d.request.object.is_null());
  CHECK(d.request.old_object.is_null());
  REQUIRE(d.document != nullptr);
  CHECK(d.request.object_view["metadata"]["labels"]["a"].string() == "b");
  CHECK_FALSE(d.request.object_view["spec"].exists());
  CHECK_FALSE(d.request.old_object_view.exists());  // the mask keeps nothing of it
  // Without views, no document is kept and no view is set.
  const DecodedReview trees = decode_review(review("admission.k8s.io/v1", req));
  CHECK(trees.document == nullptr);
  CHECK_FALSE(trees.request.object_view.exists());
}

TEST_CASE("a body parsed in place reads the same as one copied, whatever follows it", "[codec]") {
  auto outcome = [](std::string_view body, size_t readable_after) {
    try {
      const DecodedReview d = decode_review(body, ObjectFields(), false, readable_after);
      return d.request.uid + "|" + d.request.object.dump();
    } catch (const ReviewError &e) {
      return std::string("error: ") + e.what();
    }
  };
  const std::string whole = review("admission.k8s.io/v1", kRequest);
  const std::vector<std::string> bodies = {
      whole,
      whole.substr(0, whole.size() - 1),  // one "}" short: what follows must not close it
      whole.substr(0, whole.size() / 2),
      "",
      "{",
  };
  for (const std::string &body : bodies) {
    for (const std::string &after : {std::string(64, '}'), std::string(64, ' '), "}" + std::string(80, '\0'),
                                     std::string("\",\"x\":1}}") + std::string(60, '"')}) {
      INFO("body " << body.size() << " bytes");
      const std::string buffer = body + after;
      const std::string in_place = outcome(std::string_view(buffer.data(), body.size()), after.size());
      CHECK(in_place == outcome(body, 0));
    }
  }
  CHECK(outcome(whole, 0).rfind("705ab4f5", 0) == 0);
}

TEST_CASE("userInfo is read only for a policy that reads it", "[codec]") {
  const DecodedReview with_user = decode_review(review("admission.k8s.io/v1", kRequest));
  CHECK(with_user.request.username == "alice");
  CHECK(with_user.request.groups == std::vector<std::string>{"a"});
  ObjectFields no_user;
  no_user.user_info = false;
  const DecodedReview without = decode_review(review("admission.k8s.io/v1", kRequest), no_user);
  CHECK(without.request.username.empty());
  CHECK(without.request.groups.empty());
  CHECK(without.request.uid == with_user.request.uid);
  // Unread, a malformed userInfo is no error; read, it is.
  Json bad = kRequest;
  bad["userInfo"] = {{"username", 7}, {"groups", "a"}};
  CHECK_NOTHROW(decode_review(review("admission.k8s.io/v1", bad), no_user));
  CHECK_THROWS_AS(decode_review(review("admission.k8s.io/v1", bad)), ReviewError);
}

TEST_CASE("refuses reviews it cannot answer, saying why", "[codec]") {
  auto error_of = [](const std::string &body) {
    try {
      decode_review(body);
    } catch (const ReviewError &e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of("{\"apiVersion\": "), Catch::Contains("not valid JSON"));
  CHECK_THAT(error_of(""), Catch::Contains("not valid JSON"));
  CHECK_THAT(error_of("[]"), Catch::Contains("not a JSON object"));
  CHECK_THAT(error_of(review("admission.k8s.io/v2", kRequest)), Catch::Contains("unsupported apiVersion"));
  CHECK_THAT(error_of(R"({"apiVersion":"admission.k8s.io/v1","kind":"Review","request":{"uid":"u"}})"),
             Catch::Contains("want AdmissionReview"));
  CHECK_THAT(error_of(R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"})"),
             Catch::Contains("no request"));
  CHECK_THAT(error_of(R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null})"),
             Catch::Contains("no request"));
  CHECK_THAT(error_of(R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"x"})"),
             Catch::Contains("request must be an object"));
  Json no_uid = kRequest;
  no_uid.erase("uid");
  CHECK_THAT(error_of(review("admission.k8s.io/v1", no_uid)), Catch::Contains("uid is missing"));
  Json bad_uid = kRequest;
  bad_uid["uid"] = 7;
  CHECK_THAT(error_of(review("admission.k8s.io/v1", bad_uid)), Catch::Contains("uid must be a string"));
  Json bad_kind = kRequest;
  bad_kind["kind"] = "Pod";
  CHECK_THAT(error_of(review("admission.k8s.io/v1", bad_kind)),
             Catch::Contains("request.kind must be an object"));
  Json bad_version = kRequest;
  bad_version["kind"] = {{"group", ""}, {"version", 1}, {"kind", "Pod"}};
  CHECK_THAT(error_of(review("admission.k8s.io/v1", bad_version)),
             Catch::Contains("request.kind.version must be a string"));
  Json bad_resource = kRequest;
  bad_resource["resource"] = {{"group", ""}, {"version", "v1"}, {"resource", true}};
  CHECK_THAT(error_of(review("admission.k8s.io/v1", bad_resource)),
             Catch::Contains("request.resource.resource must be a string"));
  Json bad_dry = kRequest;
  bad_dry["dryRun"] = "yes";
  CHECK_THAT(error_of(review("admission.k8s.io/v1", bad_dry)), Catch::Contains("dryRun must be a boolean"));
  // Keys given twice: parsers disagree on which counts, so neither does.
  CHECK_THAT(
      error_of(
          R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","uid":"b"}})"),
      Catch::Contains("duplicate key \"request.uid\""));
  CHECK_THAT(
      error_of(
          R"({"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a"}})"),
      Catch::Contains("duplicate key \"kind\""));
  CHECK_THAT(
      error_of(
          R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a"},"request":{"uid":"b"}})"),
      Catch::Contains("duplicate key \"request\""));
  // Any key of the envelope, read or not.
  CHECK_THAT(
      error_of(
          R"({"apiVersion":"admission.k8s.io/v1","extra":1,"kind":"AdmissionReview","request":{"uid":"a"},"extra":2})"),
      Catch::Contains("duplicate key \"extra\""));
  // An escaped key counts as what it spells, and escaped keys of different
  // lengths are all remembered (each once lived in one reused buffer).
  CHECK_THAT(
      error_of(
          R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","\u0075id":"b"}})"),
      Catch::Contains("duplicate key \"request.uid\""));
  CHECK_THAT(
      error_of(
          R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"\u0075id":"a","n\u0061me":"n","n\u0061mespace":"ns","op\u0065rationExtra\u0020long":1,"n\u0061me":"m"}})"),
      Catch::Contains("duplicate key \"request.name\""));
  // Keys alike in length and first and last byte share a filter bit: they
  // are told apart, past the 32 kept inline too, and a repeat is caught.
  Json many = kRequest;
  for (int i = 0; i < 40; ++i) many["k" + std::to_string(100 + i) + "z"] = i;
  const std::string unique = review("admission.k8s.io/v1", many);
  CHECK(decode_review(unique).request.uid == kRequest["uid"].get<std::string>());
  std::string repeated = unique;
  repeated.insert(repeated.size() - 2, R"(,"k137z":0)");  // before the request's "}"
  CHECK_THAT(error_of(repeated), Catch::Contains("duplicate key \"request.k137z\""));
  // Thousands of keys made to share one bit: past the look-back budget
  // they are gathered and sorted, and a repeat of an early or a late one
  // is still caught (comparing each with all before would be quadratic).
  Json crowd = kRequest;
  for (int i = 0; i < 20000; ++i) crowd["k" + std::to_string(100000 + i) + "z"] = 0;
  const std::string crowded = review("admission.k8s.io/v1", crowd);
  CHECK(decode_review(crowded).request.uid == kRequest["uid"].get<std::string>());
  for (const char *again : {R"(,"k100003z":1)", R"(,"k119990z":1)"}) {
    std::string twice = crowded;
    twice.insert(twice.size() - 2, again);
    CHECK_THAT(error_of(twice), Catch::Contains("duplicate key \"request.k1"));
  }
}

TEST_CASE("encodes allow, patch, warnings and denial", "[codec]") {
  Decision allow = Decision::allow();
  Json out = Json::parse(encode_review("admission.k8s.io/v1beta1", "u1", allow));
  CHECK(out == Json::parse(R"({"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview",
                               "response":{"uid":"u1","allowed":true}})"));

  Decision patched = Decision::allow();
  patched.patch.add("/spec/infra", {{"nodePlacement", Json::object()}});
  patched.warn("careful \"quoted\"");
  out = Json::parse(encode_review("admission.k8s.io/v1", "u2", patched));
  CHECK(out["response"]["patchType"] == "JSONPatch");
  CHECK(out["response"]["warnings"] == Json{"careful \"quoted\""});
  const std::string patch = out["response"]["patch"];
  CHECK(patch == base64_encode(R"([{"op":"add","path":"/spec/infra","value":{"nodePlacement":{}}}])"));

  Decision denied = Decision::deny(422, "Invalid", "no, because");
  denied.causes.push_back({"FieldValueInvalid", "no, because", ""});
  denied.patch.add("/x", 1);  // a denial never carries a patch
  out = Json::parse(encode_review("admission.k8s.io/v1", "u3", denied));
  CHECK(out["response"]["allowed"] == false);
  CHECK(out["response"]["status"]["code"] == 422);
  CHECK(out["response"]["status"]["reason"] == "Invalid");
  CHECK(out["response"]["status"]["message"] == "no, because");
  CHECK(out["response"]["status"]["details"]["causes"][0]["reason"] == "FieldValueInvalid");
  CHECK_FALSE(out["response"].contains("patch"));
  CHECK_FALSE(out["response"].contains("patchType"));
}

TEST_CASE("base64 matches RFC 4648 vectors", "[codec]") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
}

TEST_CASE("warnings stay within the API server's limits", "[codec]") {
  CHECK(limit_warnings({"a\nb\tc"}) == std::vector<std::string>{"a b c"});
  const auto cut = limit_warnings({std::string(200, 'x')});
  REQUIRE(cut.size() == 1);
  CHECK(cut[0].size() == 120);
  CHECK(cut[0].substr(117) == "...");
  // A multi-byte character is not split.
  const auto utf8 = limit_warnings({std::string(116, 'x') + "ééé"});
  CHECK(Json(utf8[0]).dump().find("\\u") == std::string::npos);
  CHECK(utf8[0] == std::string(116, 'x') + "...");
  std::vector<std::string> many(100, std::string(100, 'w'));
  const auto limited = limit_warnings(many);
  size_t total = 0;
  for (const auto &w : limited) total += w.size();
  CHECK(total <= 4096);
  CHECK_THAT(limited.back(), Catch::Contains("more warnings not shown"));
}

// The last patch's base64 is kept per thread: a different patch, one of
// the same length, one past what is kept, and the first again all encode
// to their own bytes.
TEST_CASE("each answer carries its own patch, whatever came before", "[codec]") {
  auto patch_of = [](const Decision &d) {
    const Json out = Json::parse(encode_review("admission.k8s.io/v1", "u", d));
    return hci_admission::base64_decode(out["response"]["patch"].get<std::string>());
  };
  auto with = [](const std::string &path, Json value) {
    Decision d = Decision::allow();
    d.patch.add(path, std::move(value));
    return d;
  };
  const Decision a = with("/spec/a", "x"), b = with("/spec/b", "x"),
                 large = with("/spec/c", std::string(6000, 'z'));
  for (int round = 0; round < 2; ++round) {
    CHECK(patch_of(a) == a.patch.dump());
    CHECK(patch_of(a) == a.patch.dump());
    CHECK(patch_of(b) == b.patch.dump());  // same length, other bytes
    CHECK(patch_of(large) == large.patch.dump());
    CHECK(patch_of(large) == large.patch.dump());
  }
  // Patches of written-out values are compared by operation, path and
  // text: a change in any one is a new patch.
  const RenderedJson one = RenderedJson::of({{"k", 1}}), two = RenderedJson::of({{"k", 2}}),
                     one_again = RenderedJson::of({{"k", 1}});
  auto rendered = [](std::vector<std::pair<std::string, const RenderedJson *>> ops) {
    Decision d = Decision::allow();
    for (const auto &[path, value] : ops) d.patch.add(path, *value);
    return d;
  };
  const std::vector<Decision> in_turn = {
      rendered({{"/spec/a", &one}}),
      rendered({{"/spec/a", &one}}),
      rendered({{"/spec/a", &two}}),
      rendered({{"/spec/b", &two}}),
      rendered({{"/spec/b", &two}, {"/spec/c", &one}}),
      rendered({{"/spec/b", &two}}),
      with("/spec/b", {{"k", 2}}),  // the same text, not written out
      rendered({{"/spec/b", &two}}),
      rendered({{"/spec/b", &one_again}}),
      rendered({{"/spec/b", &one}}),
  };
  for (const Decision &d : in_turn) CHECK(patch_of(d) == d.patch.dump());
  // A value that is gone while its patch is kept cannot be mistaken for
  // a new one written where it was.
  for (int i = 0; i < 3; ++i) {
    const RenderedJson fleeting = RenderedJson::of({{"n", i}});
    const Decision d = rendered({{"/spec/n", &fleeting}});
    CHECK(patch_of(d) == d.patch.dump());
  }
  // A decision without a patch carries none.
  const Json none = Json::parse(encode_review("admission.k8s.io/v1", "u", Decision::allow()));
  CHECK_FALSE(none["response"].contains("patch"));
}
