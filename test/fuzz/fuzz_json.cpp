// libFuzzer target: JSON reading (simdjson through ParsedJson) against
// nlohmann's parser on the same bytes. Both must accept the same documents,
// but for the two refusals of ours alone (nesting past 512, integers beyond
// 64 bits), and build the same tree; a refusal must say where when nlohmann
// does.
#include <simdjson.h>
#include <cstdint>
#include <cstdlib>
#include <string>
#include "hci_admission/json/json_scan.hpp"
#include "hci_admission/json/json_write.hpp"
using namespace hci_admission;
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  const std::string_view text(reinterpret_cast<const char *>(d), n);
  Json theirs;
  // nlohmann takes a NUL byte for the end of its input ("1\0x" reads as
  // 1); in JSON it is never valid, raw in a string or outside one.
  bool they_accept = text.find('\0') == std::string_view::npos;
  try {
    if (they_accept) theirs = Json::parse(text.begin(), text.end());
  } catch (const Json::exception &) {
    they_accept = false;
  }
  try {
    const ParsedJson parsed(text);
    if (!they_accept) abort();  // we accepted what nlohmann refuses
    const Json ours = to_json(parsed.root());
    // Numbers may differ in type (nlohmann reads 1 as unsigned), not in value.
    if (ours != theirs) abort();
    std::string out;
    append_json(out, ours);
    if (Json::parse(out) != ours) abort();
  } catch (const JsonSyntaxError &e) {
    const std::string what = e.what();
    if (they_accept && what.find("nested too deeply") == std::string::npos &&
        what.find("number out of range") == std::string::npos) {
      abort();  // we refused what nlohmann accepts, for another reason
    }
    if (!they_accept && text.find('\0') == std::string_view::npos && e.offset() == JsonSyntaxError::npos &&
        what.find("nested too deeply") == std::string::npos &&
        what.find("number out of range") == std::string::npos) {
      abort();  // no place given for an ordinary syntax error
    }
  }
  return 0;
}
