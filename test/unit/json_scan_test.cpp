#include "hci_admission/json/json_scan.hpp"

#include <catch2/catch.hpp>

using namespace hci_admission;

namespace {
bool valid(const std::string &text) {
  try {
    validate_json(text);
    return true;
  } catch (const JsonSyntaxError &) {
    return false;
  }
}
}  // namespace

TEST_CASE("validate_json agrees with nlohmann on a table of documents", "[json_scan]") {
  const std::vector<std::string> docs = {"{}",
                                         "[]",
                                         "0",
                                         "-0",
                                         "1.5e10",
                                         "-1.25E-3",
                                         "\"x\"",
                                         "true",
                                         "false",
                                         "null",
                                         " {\"a\" : [1, 2, {}]} ",
                                         "{\"a\":\"\\u00e9\\ud83d\\ude00\\n\"}",
                                         "\"é😀\"",
                                         "[1,]",
                                         "{\"a\":1,}",
                                         "{\"a\" 1}",
                                         "{a:1}",
                                         "01",
                                         "1.",
                                         ".5",
                                         "-",
                                         "1e",
                                         "+1",
                                         "tru",
                                         "nul",
                                         "\"\\x\"",
                                         "\"\\u12\"",
                                         "\"\x01\"",
                                         "\"\xff\"",
                                         "\"\xc0\xaf\"",
                                         "\"\xed\xa0\x80\"",
                                         "\"\xf4\x90\x80\x80\"",
                                         "\"\\ud800\"",
                                         "\"\\udc00\"",
                                         "[1] [2]",
                                         "{\"a\":1}}",
                                         "[",
                                         "",
                                         "   ",
                                         "\"unterminated",
                                         "{\"a\":[1,2}",
                                         "[\"a\":1]"};
  for (const auto &doc : docs) {
    INFO("document: " << doc);
    const bool nlohmann_accepts = nlohmann::json::accept(doc);
    CHECK(valid(doc) == nlohmann_accepts);
  }
}

TEST_CASE("validate_json limits nesting", "[json_scan]") {
  CHECK(valid(std::string(100, '[') + std::string(100, ']')));
  CHECK_FALSE(valid(std::string(1000, '[') + std::string(1000, ']')));
  try {
    validate_json(std::string(1000, '['));
    FAIL("no error");
  } catch (const JsonSyntaxError &e) {
    CHECK_THAT(e.what(), Catch::Contains("nested too deeply"));
  }
}

TEST_CASE("JsonView walks members, skipping subtrees", "[json_scan]") {
  const std::string text =
      R"({"a": {"x": [1, {"y": "}"}]}, "b\"k": "s\\\"", "c": -1.5e3, "d": null, "e\u0041": true})";
  const JsonIndex index = validate_json(text);
  std::vector<std::pair<std::string, std::string>> seen;
  JsonView(index).for_each_member(
      [&](std::string_view k, JsonView v) { seen.emplace_back(std::string(k), std::string(v.raw())); });
  REQUIRE(seen.size() == 5);
  CHECK(seen[0] == std::make_pair(std::string("a"), std::string(R"({"x": [1, {"y": "}"}]})")));
  CHECK(seen[1].first == "b\"k");
  CHECK(seen[1].second == R"("s\\\"")");
  CHECK(seen[2].second == "-1.5e3");
  CHECK(seen[3].second == "null");
  CHECK(seen[4].first == "eA");
  CHECK(seen[4].second == "true");
}

TEST_CASE("FieldMask keeps the asked-for members and bad shapes", "[json_scan]") {
  const std::string text =
      R"({"metadata":{"name":"n","labels":{"a/b":"c"},"annotations":{"z":"1"}},"spec":{"affinity":{"k":1},"containers":[1,2]},"status":"s"})";
  const JsonIndex index = validate_json(text);
  const Json full = Json::parse(text);
  CHECK(FieldMask::everything().extract(JsonView(index)) == full);
  const Json some =
      FieldMask::of({"/metadata/labels", "/spec/affinity", "/spec/tolerations"}).extract(JsonView(index));
  CHECK(some == Json::parse(R"({"metadata":{"labels":{"a/b":"c"}},"spec":{"affinity":{"k":1}}})"));
  // Escaped pointer tokens name keys with '/'.
  CHECK(FieldMask::of({"/metadata/labels/a~1b"}).extract(JsonView(index)) ==
        Json::parse(R"({"metadata":{"labels":{"a/b":"c"}}})"));
  // A scalar where the mask expects an object is kept whole.
  CHECK(FieldMask::of({"/status/phase"}).extract(JsonView(index)) == Json::parse(R"({"status":"s"})"));
}

TEST_CASE("JsonView::parse builds the same tree as nlohmann", "[json_scan]") {
  const std::vector<std::string> docs = {
      R"({"a":[1,-2,0,-0,3.25,-1e-7,1E+3,18446744073709551615,-9223372036854775808,123456789012345678]})",
      R"({"s":"plain","e":"esc\"aped\\\n\u00e9\ud83d\ude00","u":"é😀","k\u0041":null,"t":true,"f":false})",
      R"([[],{},[{}],{"":""}])",
      R"("top")",
      "42",
      "-7",
      "null",
      R"({"dup":1,"dup":2})"};
  for (const auto &doc : docs) {
    INFO("document: " << doc);
    const JsonIndex index = validate_json(doc);
    const Json ours = JsonView(index).parse();
    const Json theirs = Json::parse(doc);
    CHECK(ours == theirs);
    CHECK(ours.dump() == theirs.dump());
  }
}

// Found by fuzz_list in CI: a number beyond a double passed the validator,
// then nlohmann threw out_of_range while building the policy's fields, and
// the exception took the server down. Every number the validator accepts
// must now build.
TEST_CASE("numbers beyond a double are refused, and every accepted number builds", "[json_scan]") {
  for (const char *text :
       {"1e400", "-1e400", "[1E+309]", "{\"a\":31111e11111111111111111}", "[-0.5e99999]"}) {
    INFO(text);
    CHECK_FALSE(valid(text));
  }
  const std::string many_digits(400, '9');
  CHECK_FALSE(valid(many_digits));
  for (const char *text : {"1e308", "-1.7e308", "1e-400", "[18446744073709551616]",
                           "123456789012345678901234567890", "0.000001e-5"}) {
    INFO(text);
    REQUIRE(valid(text));
    const JsonIndex index = validate_json(text);
    CHECK_NOTHROW(JsonView(index).parse());
  }
  try {
    validate_json("{\"replicas\": 1e400}");
    FAIL("no error");
  } catch (const JsonSyntaxError &e) {
    CHECK_THAT(e.what(), Catch::Contains("number out of range"));
  }
}
