#include "hci_admission/json/json_scan.hpp"

#include <simdjson.h>
#include <catch2/catch.hpp>

using namespace hci_admission;

namespace {
bool valid(const std::string &text) {
  try {
    const ParsedJson parsed(text);
    return true;
  } catch (const JsonSyntaxError &) {
    return false;
  }
}
}  // namespace

TEST_CASE("ParsedJson agrees with nlohmann on a table of documents", "[json_scan]") {
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

TEST_CASE("ParsedJson limits nesting", "[json_scan]") {
  CHECK(valid(std::string(100, '[') + std::string(100, ']')));
  CHECK(valid(std::string(512, '[') + std::string(512, ']')));
  CHECK_FALSE(valid(std::string(513, '[') + std::string(513, ']')));
  CHECK_FALSE(valid(std::string(1000, '[') + std::string(1000, ']')));
  try {
    const ParsedJson parsed(std::string(1000, '[') + std::string(1000, ']'));
    FAIL("no error");
  } catch (const JsonSyntaxError &e) {
    CHECK_THAT(e.what(), Catch::Contains("nested too deeply"));
  }
}

TEST_CASE("a syntax error says where", "[json_scan]") {
  const std::vector<std::pair<std::string, size_t>> cases = {
      {R"({"a" 1})", 5}, {"[1,]", 3}, {"[tru]", 4}, {R"({"a":"\x"})", 7}, {"{\"a\":1}}", 7}, {"", 0}};
  for (const auto &[text, offset] : cases) {
    INFO("document: " << text);
    try {
      const ParsedJson parsed(text);
      FAIL("no error");
    } catch (const JsonSyntaxError &e) {
      CHECK(e.offset() == offset);
      CHECK_THAT(e.what(), Catch::Contains("at byte " + std::to_string(offset)));
    }
  }
  // Invalid UTF-8, which nlohmann also refuses, is placed too.
  try {
    const ParsedJson parsed("[\"ok\", \"\xff\"]");
    FAIL("no error");
  } catch (const JsonSyntaxError &e) {
    CHECK(e.offset() != JsonSyntaxError::npos);
  }
}

TEST_CASE("documents parsed one inside another keep their own parser", "[json_scan]") {
  const ParsedJson outer(R"({"a":[1,2,3]})");
  {
    const ParsedJson inner(R"({"b":"x"})");
    CHECK(to_json(inner.root()) == Json::parse(R"({"b":"x"})"));
  }
  CHECK(to_json(outer.root()) == Json::parse(R"({"a":[1,2,3]})"));
  // A document over 1 MiB gets a parser of its own; the thread's is
  // unchanged for the next one.
  const std::string big = "[\"" + std::string(2u << 20, 'x') + "\"]";
  {
    const ParsedJson large(big);
    CHECK(to_json(large.root())[0].get_ref<const JsonString &>().size() == (2u << 20));
  }
  const ParsedJson next(R"({"c":null})");
  CHECK(to_json(next.root()) == Json::parse(R"({"c":null})"));
}

TEST_CASE("FieldMask keeps the asked-for members and bad shapes", "[json_scan]") {
  const std::string text =
      R"({"metadata":{"name":"n","labels":{"a/b":"c"},"annotations":{"z":"1"}},"spec":{"affinity":{"k":1},"containers":[1,2]},"status":"s"})";
  const ParsedJson parsed(text);
  const Json full = Json::parse(text);
  CHECK(FieldMask::everything().extract(parsed.root()) == full);
  const Json some =
      FieldMask::of({"/metadata/labels", "/spec/affinity", "/spec/tolerations"}).extract(parsed.root());
  CHECK(some == Json::parse(R"({"metadata":{"labels":{"a/b":"c"}},"spec":{"affinity":{"k":1}}})"));
  // Escaped pointer tokens name keys with '/'.
  CHECK(FieldMask::of({"/metadata/labels/a~1b"}).extract(parsed.root()) ==
        Json::parse(R"({"metadata":{"labels":{"a/b":"c"}}})"));
  // A scalar where the mask expects an object is kept whole.
  CHECK(FieldMask::of({"/status/phase"}).extract(parsed.root()) == Json::parse(R"({"status":"s"})"));
}

TEST_CASE("a JsonView reads what its mask keeps, as the masked tree has it", "[json_scan]") {
  const std::string text =
      R"({"metadata":{"name":"n","labels":{"a/b":"c","a/b":"d"},"annotations":{"z":"1"}},)"
      R"("spec":{"affinity":{"k":1},"tolerations":[{"key":"x"},"y",null],"n":null},"status":"s"})";
  const ParsedJson parsed(text);
  const FieldMask mask =
      FieldMask::of({"/metadata/labels", "/spec/affinity", "/spec/tolerations", "/spec/n"});
  const JsonView pod(parsed.root(), &mask);
  CHECK(pod.exists());
  CHECK(pod.is_object());
  // Left out by the mask: absent, as in the masked tree.
  CHECK_FALSE(pod["metadata"]["name"].exists());
  CHECK_FALSE(pod["status"].exists());
  CHECK_FALSE(pod["metadata"]["annotations"]["z"].exists());
  // A key given twice reads as its last value, as in the tree.
  CHECK(pod["metadata"]["labels"]["a/b"].string() == "d");
  CHECK(pod["metadata"]["labels"].to_json() == mask.extract(parsed.root())["metadata"]["labels"]);
  // Null exists; absent does not; neither is a string.
  CHECK(pod["spec"]["n"].exists());
  CHECK(pod["spec"]["n"].is_null());
  CHECK_FALSE(pod["spec"]["missing"].exists());
  CHECK_FALSE(pod["spec"]["missing"].is_null());
  CHECK(pod["spec"]["n"].string().empty());
  // Members of a non-object, elements of a non-array: none.
  CHECK_FALSE(pod["spec"]["affinity"]["k"]["deeper"].exists());
  CHECK(pod["spec"]["affinity"].begin() == pod["spec"]["affinity"].end());
  CHECK(JsonView().begin() == JsonView().end());
  // An array's elements in order, whole (the mask keeps arrays whole).
  std::vector<Json> elements;
  for (const JsonView e : pod["spec"]["tolerations"]) elements.push_back(e.to_json());
  CHECK(Json(elements) == Json::parse(R"([{"key":"x"},"y",null])"));
  CHECK(pod["spec"]["tolerations"].begin() != pod["spec"]["tolerations"].end());
  // The whole view as a tree is the masked tree.
  CHECK(pod.to_json() == mask.extract(parsed.root()));
  CHECK(JsonView(parsed.root(), nullptr).to_json() == Json::parse(text));
  CHECK(JsonView().to_json().is_null());
}

TEST_CASE("members() reads several members as operator[] reads each", "[json_scan]") {
  std::string text =
      R"({"metadata":{"name":"n","labels":{"a":"1","b":"2","a":"3"}},"spec":{"x":1},"status":"s")";
  // More keys than one pass takes, one of them repeated.
  for (int i = 0; i < 12; ++i) text += ",\"k" + std::to_string(i) + "\":" + std::to_string(i);
  text += R"(,"k3":"last"})";
  const ParsedJson parsed(text);
  const FieldMask mask = FieldMask::of({"/metadata/labels", "/spec", "/k3", "/k10"});
  for (const FieldMask *m : {static_cast<const FieldMask *>(nullptr), &mask}) {
    const JsonView doc(parsed.root(), m);
    const auto found = doc.members({"spec", "metadata", "status", "missing", "k0", "k1", "k2", "k3", "k4",
                                    "k5", "k6", "k7", "k8", "k9", "k10", "k11"});
    const std::string_view keys[] = {"spec", "metadata", "status", "missing", "k0", "k1", "k2",  "k3",
                                     "k4",   "k5",       "k6",     "k7",      "k8", "k9", "k10", "k11"};
    for (size_t i = 0; i < std::size(keys); ++i) {
      INFO(keys[i] << (m == nullptr ? " unmasked" : " masked"));
      CHECK(found[i].exists() == doc[keys[i]].exists());
      CHECK(found[i].to_json() == doc[keys[i]].to_json());
      // And as the tree has it, masked or whole.
      const Json tree = m == nullptr ? Json::parse(text) : m->extract(parsed.root());
      const auto member = tree.find(std::string(keys[i]));
      CHECK(found[i].exists() == (member != tree.end()));
      if (member != tree.end()) CHECK(found[i].to_json() == *member);
    }
    CHECK(found[7].string() == "last");
    CHECK(found[2].exists() == (m == nullptr));  // status: left out by the mask
    const auto [labels, name] = found[1].members({"labels", "name"});
    CHECK(labels["a"].string() == "3");
    CHECK(name.exists() == (m == nullptr));
  }
  const auto [none] = JsonView().members({"a"});
  CHECK_FALSE(none.exists());
  const auto [in_string] = JsonView(parsed.root(), nullptr)["status"].members({"a"});
  CHECK_FALSE(in_string.exists());
}

TEST_CASE("to_json builds the same tree as nlohmann", "[json_scan]") {
  const std::vector<std::string> docs = {
      R"({"a":[1,-2,0,-0,3.25,-1e-7,1E+3,18446744073709551615,-9223372036854775808,123456789012345678]})",
      R"({"a":[0.1,1e308,-2.5e-308,12345.678901234567,9007199254740993]})",
      R"({"s":"plain","e":"esc\"aped\\\n\u00e9\ud83d\ude00","u":"é😀","k\u0041":null,"t":true,"f":false})",
      R"([[],{},[{}],{"":""}])",
      R"("top")",
      "42",
      "-7",
      "null",
      R"({"dup":1,"dup":2})"};
  for (const auto &doc : docs) {
    INFO("document: " << doc);
    const ParsedJson parsed(doc);
    const Json ours = to_json(parsed.root());
    const Json theirs = Json::parse(doc);
    CHECK(ours == theirs);
    CHECK(ours.dump() == theirs.dump());
  }
}

// Found by fuzz_list in CI: a number beyond a double passed the validator,
// then nlohmann threw out_of_range while building the policy's fields, and
// the exception took the server down. Every number the validator accepts
// must now build.
TEST_CASE("numbers beyond a double or 64 bits are refused, and every accepted number builds", "[json_scan]") {
  for (const char *text :
       {"1e400", "-1e400", "[1E+309]", "{\"a\":31111e11111111111111111}", "[-0.5e99999]"}) {
    INFO(text);
    CHECK_FALSE(valid(text));
  }
  const std::string many_digits(400, '9');
  CHECK_FALSE(valid(many_digits));
  // Integers beyond 64 bits are valid JSON that nlohmann and Go's decoder
  // would hold as doubles; simdjson refuses them, and kube-apiserver never
  // writes them (its objects hold int64 or float64). A deliberate
  // difference (README), with its own message.
  for (const char *text :
       {"[18446744073709551616]", "123456789012345678901234567890", "[-9223372036854775809]"}) {
    INFO(text);
    try {
      const ParsedJson parsed(text);
      FAIL("no error");
    } catch (const JsonSyntaxError &e) {
      CHECK_THAT(e.what(), Catch::Contains("number out of range"));
    }
  }
  for (const char *text :
       {"1e308", "-1.7e308", "1e-400", "[18446744073709551615]", "[-9223372036854775808]", "0.000001e-5"}) {
    INFO(text);
    REQUIRE(valid(text));
    const ParsedJson parsed(text);
    CHECK_NOTHROW(to_json(parsed.root()));
  }
  try {
    const ParsedJson parsed("{\"replicas\": 1e400}");
    FAIL("no error");
  } catch (const JsonSyntaxError &e) {
    CHECK_THAT(e.what(), Catch::Contains("number out of range"));
  }
}

TEST_CASE("an error echoes nothing of the text, and large documents are bounded", "[json_scan]") {
  // nlohmann's "last read: '...'" would carry the client's bytes, of any
  // length, into the answer and the log.
  const std::string bad = "[\"" + std::string(40000, 'x') + "\x01\"]";
  try {
    const ParsedJson parsed(bad);
    FAIL("no error");
  } catch (const JsonSyntaxError &e) {
    CHECK(std::string(e.what()).size() < 200);
    CHECK(std::string(e.what()).find("xxx") == std::string::npos);
    CHECK(e.offset() != JsonSyntaxError::npos);
  }
  // Past 64 KiB an error is not placed (finding the byte again would cost
  // many times the reading), but still refused.
  const std::string big_bad = "[\"" + std::string(100000, 'x') + "\x01\"]";
  CHECK_THROWS_AS(ParsedJson(big_bad), JsonSyntaxError);
  // A document so dense with values that indexing it would take over 32 MiB
  // is refused before any of it is indexed; as large a document of long
  // strings, as an ordinary big object is, is read.
  std::string dense = "[0";
  for (size_t i = 0; i < (2u << 20); ++i) dense += ",0";
  dense += "]";
  CHECK_THROWS_AS(ParsedJson(dense), JsonTooLarge);
  const std::string sparse = "{\"data\":\"" + std::string(3u << 20, 'y') + "\",\"n\":[1,2,3]}";
  const ParsedJson parsed(sparse);
  CHECK(to_json(parsed.root())["n"].size() == 3);
  CHECK_THROWS_AS(ParsedJson(std::string_view()), JsonSyntaxError);
}

TEST_CASE("a JsonReader serves a run of documents, one at a time", "[json_scan]") {
  JsonReader reader;
  for (int i = 0; i < 3; ++i) {
    const std::string text =
        "{\"page\":" + std::to_string(i) + ",\"items\":[\"" + std::string(100000, 'x') + "\"]}";
    const ParsedJson page(text, reader);
    CHECK(to_json(page.root())["page"] == i);
    // While a page is open, another document on the same reader gets its own parser.
    const ParsedJson other("[1]", reader);
    CHECK(to_json(other.root()) == Json::parse("[1]"));
    CHECK(to_json(page.root())["page"] == i);
  }
  CHECK_THROWS_AS(ParsedJson("[1,]", reader), JsonSyntaxError);
  const ParsedJson after("{}", reader);  // a failed parse leaves the reader free
  CHECK(to_json(after.root()) == Json::object());
}
