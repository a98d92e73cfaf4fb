#include "hci_admission/json/json_write.hpp"

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// The first byte at or after `p` that must be escaped, or `end`: 16 bytes
// at a time where SSE2 is there (UTF-8 passes through: only bytes below
// 0x20, quote and backslash stop). Byte by byte, this loop was 12
// instructions a byte of a CSI patch (callgrind).
const char *find_escape(const char *p, const char *end) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i control_max = _mm_set1_epi8(0x1F);
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
    // min(v, 0x1F) == v exactly for the bytes 0x00..0x1F (unsigned).
    const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(v, control_max), v);
    const __m128i stops =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)), control);
    const int mask = _mm_movemask_epi8(stops);
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  while (p != end && !kEscape.escape[static_cast<unsigned char>(*p)]) ++p;
  return p;
}

void append_escape(std::string &out, unsigned char c) {
  static const char kHex[] = "0123456789abcdef";
  switch (c) {
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':
      out += "\\t";
      return;
    case '\b':
      out += "\\b";
      return;
    case '\f':
      out += "\\f";
      return;
    default:
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
  }
}
}  // namespace

void append_json_string(std::string &out, std::string_view text) {
  const char *p = text.data();
  const char *const end = p + text.size();
  const char *stop = find_escape(p, end);
  // Most strings need no escaping: written in one step (appending quote,
  // text and quote one by one was 180 instructions a string, callgrind).
  const size_t at = out.size();
  out.resize(at + 2 + static_cast<size_t>(stop - p));
  char *o = out.data() + at;
  *o++ = '"';
  if (stop != p) std::memcpy(o, p, static_cast<size_t>(stop - p));
  if (stop == end) {
    out.back() = '"';
    return;
  }
  out.pop_back();
  for (;;) {
    append_escape(out, static_cast<unsigned char>(*stop));
    p = stop + 1;
    stop = find_escape(p, end);
    out.append(p, static_cast<size_t>(stop - p));
    if (stop == end) break;
  }
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
      append_json_string(out, value.get_ref<const JsonString &>());
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

}  // namespace hci_admission
