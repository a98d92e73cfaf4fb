#include "hci_admission/json/json_scan.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace hci_admission {
namespace {

// Bytes a string scan must stop at: quote, backslash, control, non-ASCII.
struct StringStops {
  bool stop[256];
  constexpr StringStops() : stop() {
    for (int c = 0; c < 256; ++c) stop[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
  }
};
constexpr StringStops kStringStops;

}  // namespace

class JsonValidator {
 public:
  JsonValidator(JsonIndex &index, size_t max_depth)
      : index_(index),
        begin_(index.text_.data()),
        p_(begin_),
        end_(begin_ + index.text_.size()),
        max_depth_(max_depth) {}

  void run() {
    if (index_.text_.size() > UINT32_MAX) fail("document too large");
    stack_.reserve(64);
    open_chars_.reserve(64);
    index_.containers_.reserve(64);
    value();
    for (;;) {
      space();
      if (stack_.empty()) {
        if (p_ != end_) fail("unexpected data after the JSON value");
        return;
      }
      const char open = open_chars_.back();
      const char c = next();
      if (c == ',') {
        if (open == '{') key();
        value();
      } else if (c == (open == '{' ? '}' : ']')) {
        close();
      } else {
        fail(open == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
      }
    }
  }

 private:
  [[noreturn]] void fail(const char *what) const {
    throw JsonSyntaxError(what, static_cast<size_t>(p_ - begin_));
  }

  void space() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  char next() {
    if (p_ == end_) fail("unexpected end of input");
    return *p_++;
  }

  void open() {
    if (stack_.size() >= max_depth_) fail("JSON nested too deeply");
    stack_.push_back(static_cast<uint32_t>(index_.containers_.size()));
    open_chars_.push_back(*p_);
    index_.containers_.push_back({static_cast<uint32_t>(p_ - begin_), 0, 0});
  }

  // p_ is just past the closing bracket.
  void close() {
    auto &c = index_.containers_[stack_.back()];
    c.end = static_cast<uint32_t>(p_ - begin_);
    c.after = static_cast<uint32_t>(index_.containers_.size());
    stack_.pop_back();
    open_chars_.pop_back();
  }

  void key() {
    space();
    if (p_ == end_ || *p_ != '"') fail("expected a string key");
    string();
    space();
    if (next() != ':') fail("expected ':'");
  }

  // One value; containers are opened here and closed by run().
  void value() {
    space();
    if (p_ == end_) fail("unexpected end of input");
    switch (*p_) {
      case '{':
        open();
        ++p_;
        space();
        if (p_ != end_ && *p_ == '}') {
          ++p_;
          close();
          return;
        }
        key();
        value();
        return;
      case '[':
        open();
        ++p_;
        space();
        if (p_ != end_ && *p_ == ']') {
          ++p_;
          close();
          return;
        }
        value();
        return;
      case '"':
        string();
        return;
      case 't':
        literal("true");
        return;
      case 'f':
        literal("false");
        return;
      case 'n':
        literal("null");
        return;
      default:
        number();
        return;
    }
  }

  void literal(const char *word) {
    const size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) fail("invalid literal");
    p_ += n;
  }

  void digits() {
    if (p_ == end_ || *p_ < '0' || *p_ > '9') fail("invalid number");
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
  }

  void number() {
    const char *start = p_;
    if (*p_ == '-') ++p_;
    if (p_ != end_ && *p_ == '0') {
      ++p_;
    } else {
      digits();
    }
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      digits();
    }
    bool exponent = false;
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      exponent = true;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      digits();
    }
    // A number beyond a double (1e400) is valid JSON, but neither nlohmann
    // nor Go's decoder can hold it: refuse it here rather than fail later.
    // Only an exponent or over 300 digits can get there.
    if (exponent || p_ - start > 300) {
      const std::string text(start, p_);
      if (!std::isfinite(std::strtod(text.c_str(), nullptr))) fail("number out of range");
    }
  }

  unsigned hex4() {
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = next();
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<unsigned>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<unsigned>(c - 'A' + 10);
      } else {
        fail("invalid \\u escape");
      }
    }
    return v;
  }

  void escape() {
    switch (next()) {
      case '"':
      case '\\':
      case '/':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        return;
      case 'u': {
        const unsigned u = hex4();
        if (u >= 0xDC00 && u <= 0xDFFF) fail("lone low surrogate in \\u escape");
        if (u >= 0xD800 && u <= 0xDBFF) {
          if (next() != '\\' || next() != 'u') fail("high surrogate without a low one");
          const unsigned low = hex4();
          if (low < 0xDC00 || low > 0xDFFF) fail("high surrogate without a low one");
        }
        return;
      }
      default:
        fail("invalid escape");
    }
  }

  // RFC 3629: shortest form only, no surrogates, nothing above U+10FFFF.
  void utf8() {
    const auto b0 = static_cast<unsigned char>(*p_);
    int n = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      n = 1;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      n = 2;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      n = 3;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    } else {
      fail("invalid UTF-8");
    }
    ++p_;
    for (int i = 0; i < n; ++i) {
      if (p_ == end_) fail("invalid UTF-8");
      const auto b = static_cast<unsigned char>(*p_);
      if (b < lo || b > hi) fail("invalid UTF-8");
      lo = 0x80;
      hi = 0xBF;
      ++p_;
    }
  }

  // Skips plain ASCII string bytes, 16 at a time where SSE2 is there: a
  // signed compare below 0x20 catches control bytes and bytes >= 0x80
  // alike. Most of an object's bytes are in strings (measured: the scalar
  // loop was 70k of 300k instructions per Pod review).
  void skip_plain() {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (end_ - p_ >= 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p_));
      const __m128i stops = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                         _mm_cmplt_epi8(v, space));
      const int mask = _mm_movemask_epi8(stops);
      if (mask != 0) {
        p_ += __builtin_ctz(static_cast<unsigned>(mask));
        return;
      }
      p_ += 16;
    }
#endif
    while (p_ != end_ && !kStringStops.stop[static_cast<unsigned char>(*p_)]) ++p_;
  }

  void string() {
    ++p_;  // opening quote
    for (;;) {
      skip_plain();
      if (p_ == end_) fail("unterminated string");
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return;
      }
      if (c == '\\') {
        ++p_;
        escape();
      } else if (c < 0x20) {
        fail("control character in string");
      } else if (c >= 0x80) {
        utf8();
      } else {
        ++p_;
      }
    }
  }

  JsonIndex &index_;
  const char *begin_;
  const char *p_;
  const char *end_;
  size_t max_depth_;
  std::vector<uint32_t> stack_;   // open containers, as indexes into containers_
  std::vector<char> open_chars_;  // and their opening brackets
};

JsonIndex validate_json(std::string_view text, size_t max_depth) {
  JsonIndex index(text);
  JsonValidator(index, max_depth).run();
  return index;
}

size_t JsonIndex::container_end(size_t start) const {
  size_t i;
  if (child_ < containers_.size() && containers_[child_].open == start) {
    i = child_;
  } else if (sibling_ < containers_.size() && containers_[sibling_].open == start) {
    i = sibling_;
  } else {
    auto it = std::lower_bound(containers_.begin(), containers_.end(), start,
                               [](const Container &c, size_t s) { return c.open < s; });
    i = static_cast<size_t>(it - containers_.begin());
  }
  child_ = i + 1;
  sibling_ = containers_[i].after;
  return containers_[i].end;
}

JsonView::JsonView(const JsonIndex &index) : raw_(index.text()), index_(&index) {
  const auto first = raw_.find_first_not_of(" \t\r\n");
  raw_ = raw_.substr(first, raw_.find_last_not_of(" \t\r\n") - first + 1);
}

size_t JsonView::skip_space(size_t pos) const {
  while (pos < raw_.size() &&
         (raw_[pos] == ' ' || raw_[pos] == '\n' || raw_[pos] == '\r' || raw_[pos] == '\t')) {
    ++pos;
  }
  return pos;
}

// The text is known to be valid, so this only has to find the end.
size_t JsonView::skip_value(size_t pos) const {
  const char *s = raw_.data();
  const size_t n = raw_.size();
  auto skip_string = [&](size_t i) {
    ++i;
    for (;;) {
      const void *q = std::memchr(s + i, '"', n - i);
      size_t j = static_cast<size_t>(static_cast<const char *>(q) - s);
      size_t backslashes = 0;
      while (j - backslashes > i && s[j - backslashes - 1] == '\\') ++backslashes;
      if (backslashes % 2 == 0) return j + 1;
      i = j + 1;
    }
  };
  const char c = s[pos];
  if (c == '"') return skip_string(pos);
  if (c == '{' || c == '[') {
    const size_t offset = static_cast<size_t>(raw_.data() - index_->text().data());
    return index_->container_end(offset + pos) - offset;
  }
  while (pos < n && s[pos] != ',' && s[pos] != '}' && s[pos] != ']' && s[pos] != ' ' && s[pos] != '\n' &&
         s[pos] != '\r' && s[pos] != '\t') {
    ++pos;
  }
  return pos;
}

std::string JsonView::string_value() const {
  if (raw_.find('\\') == std::string_view::npos) return std::string(raw_.substr(1, raw_.size() - 2));
  return Json::parse(raw_.begin(), raw_.end()).get<std::string>();
}

Json JsonView::parse() const {
  switch (raw_.front()) {
    case '{': {
      Json out = Json::object();
      for_each_member([&](std::string_view key, JsonView v) { out[std::string(key)] = v.parse(); });
      return out;
    }
    case '[': {
      Json out = Json::array();
      for_each_element([&](JsonView v) { out.push_back(v.parse()); });
      return out;
    }
    case '"':
      return Json(string_value());
    case 't':
      return Json(true);
    case 'f':
      return Json(false);
    case 'n':
      return Json(nullptr);
    default: {
      // Integers the common way; anything else (fractions, exponents, huge
      // values) exactly as nlohmann reads it.
      const bool negative = raw_.front() == '-';
      if (raw_.size() <= 18 && raw_.find_first_of(".eE") == std::string_view::npos) {
        int64_t v = 0;
        for (size_t i = negative ? 1 : 0; i < raw_.size(); ++i) v = v * 10 + (raw_[i] - '0');
        return negative ? Json(-v) : Json(static_cast<uint64_t>(v));
      }
      return Json::parse(raw_.begin(), raw_.end());
    }
  }
}

FieldMask FieldMask::everything() {
  FieldMask m;
  m.whole_ = true;
  return m;
}

FieldMask FieldMask::of(const std::vector<std::string> &pointers) {
  FieldMask root;
  for (const auto &pointer : pointers) {
    if (pointer.empty()) return everything();
    FieldMask *node = &root;
    size_t start = 1;  // skip the leading '/'
    while (start <= pointer.size()) {
      size_t slash = pointer.find('/', start);
      if (slash == std::string::npos) slash = pointer.size();
      std::string token = pointer.substr(start, slash - start);
      for (size_t i = 0; (i = token.find('~', i)) != std::string::npos; ++i) {
        token.replace(i, 2, token.compare(i, 2, "~1") == 0 ? "/" : "~");
      }
      node = &node->children_[token];
      start = slash + 1;
    }
    node->whole_ = true;
  }
  return root;
}

Json FieldMask::extract(JsonView value) const {
  if (whole_ || !value.is_object()) return value.parse();
  Json out = Json::object();
  value.for_each_member([&](std::string_view key, JsonView member) {
    auto it = children_.find(key);
    if (it != children_.end()) out[std::string(key)] = it->second.extract(member);
  });
  return out;
}

}  // namespace hci_admission
