#include "hci_admission/admission/json_patch.hpp"
#include "policy_harness.hpp"

#include <catch2/catch.hpp>

using hci_admission::Json;
using hci_admission::JsonPatch;

TEST_CASE("pointer tokens escape ~ and /", "[json_patch]") {
  CHECK(hci_admission::escape_pointer_token("node-role.kubernetes.io/master") ==
        "node-role.kubernetes.io~1master");
  CHECK(hci_admission::escape_pointer_token("a~b/c") == "a~0b~1c");
  CHECK(hci_admission::escape_pointer_token("~1") == "~01");
  CHECK(hci_admission::join_pointer("/metadata/labels", "app.kubernetes.io/name") ==
        "/metadata/labels/app.kubernetes.io~1name");
  CHECK(hci_admission::join_pointer("/spec/tolerations", size_t{3}) == "/spec/tolerations/3");
}

TEST_CASE("append_json_string escapes what JSON requires", "[json_patch]") {
  std::string out;
  hci_admission::append_json_string(out, "a\"b\\c\nd\x01 é");
  CHECK(out == "\"a\\\"b\\\\c\\nd\\u0001 é\"");
  CHECK(Json::parse(out) == "a\"b\\c\nd\x01 é");
}

// diff must produce a patch that turns before into after when applied by an
// independent implementation (nlohmann's own patch()).
static void check_roundtrip(const Json &before, const Json &after) {
  JsonPatch p;
  p.diff("", before, Json(after));
  INFO("patch: " << p.dump());
  CHECK(test_support::apply_patch(before, p.dump()) == after);
}

TEST_CASE("diff turns one document into another", "[json_patch]") {
  check_roundtrip({{"a", 1}}, {{"a", 1}, {"b", {{"c", true}}}});
  check_roundtrip({{"a", {1, 2}}}, {{"a", {1, 2, 3, 4}}});
  check_roundtrip({{"a", {1, 2, 3}}}, {{"a", {1}}});
  check_roundtrip({{"a", {{{"x", 1}}, {{"x", 2}}}}}, {{"a", {{{"x", 1}}, {{"x", 3}, {"y", 4}}}}});
  check_roundtrip({{"a", nullptr}}, {{"a", {{"b", 1}}}});
  check_roundtrip({{"k/with~chars", 1}}, {{"k/with~chars", 2}, {"n/ew", 3}});
  check_roundtrip({{"a", 1}, {"b", 2}}, {{"b", 2}});
}

TEST_CASE("diff prefers add and never replaces a grown array", "[json_patch]") {
  Json before = {{"spec", {{"tolerations", {{{"key", "a"}}}}}}};
  Json after = before;
  after["spec"]["tolerations"].push_back({{"key", "b"}});
  after["spec"]["affinity"] = {{"nodeAffinity", Json::object()}};
  JsonPatch p;
  p.diff("", before, std::move(after));
  REQUIRE(p.size() == 2);
  for (const auto &op : p.operations()) CHECK(op.op == "add");
  CHECK(p.operations()[0].path == "/spec/affinity");
  CHECK(p.operations()[1].path == "/spec/tolerations/-");
}

TEST_CASE("diff of equal documents is empty", "[json_patch]") {
  Json doc = {{"a", {1, {{"b", "c"}}}}};
  JsonPatch p;
  p.diff("/x", doc, Json(doc));
  CHECK(p.empty());
  CHECK(p.dump() == "[]");
}

TEST_CASE("dump writes valid JSON Patch", "[json_patch]") {
  JsonPatch p;
  p.add("/a~1b", {{"k", "v\"q"}});
  p.remove("/c");
  p.replace("/d/0", 5);
  const Json parsed = Json::parse(p.dump());
  CHECK(parsed == Json::parse(R"([{"op":"add","path":"/a~1b","value":{"k":"v\"q"}},
                                  {"op":"remove","path":"/c"},
                                  {"op":"replace","path":"/d/0","value":5}])"));
  CHECK(parsed == p.to_json());
}

TEST_CASE("a value written once is shared by every patch it is added to", "[json_patch]") {
  const Json value = {{"key", "k\"/"}, {"values", {1, 2.5, nullptr}}};
  const auto rendered = hci_admission::RenderedJson::of(value);
  JsonPatch a, b;
  a.add("/x", rendered);
  b.add("/y/-", rendered);
  b.add("/z", Json(3));
  CHECK(Json::parse(a.dump()) ==
        Json::parse(R"([{"op":"add","path":"/x","value":{"key":"k\"/","values":[1,2.5,null]}}])"));
  CHECK(Json::parse(b.dump()) == b.to_json());
  CHECK(b.operations()[0].value_json() == value);
  CHECK(b.operations()[1].value_json() == 3);
  // One text, not a copy each.
  CHECK(a.operations()[0].rendered.text().data() == b.operations()[0].rendered.text().data());
  CHECK_FALSE(hci_admission::RenderedJson().has_value());
}

TEST_CASE("append_json writes what nlohmann's dump writes", "[json_patch]") {
  const std::vector<Json> values = {
      Json::parse(
          R"({"a":[1,-2,3.5,true,false,null,"x\"y\\z\n\u0001é😀"],"b":{},"c":[],"d":{"e":{"f":18446744073709551615}}})"),
      Json(nullptr),
      Json(0),
      Json(-9223372036854775807LL - 1),
      Json("plain"),
      Json(1e300),
      Json(0.1)};
  for (const auto &v : values) {
    std::string out;
    hci_admission::append_json(out, v);
    CHECK(out == v.dump());
  }
}
