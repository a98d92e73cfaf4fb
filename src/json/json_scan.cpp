#include "hci_admission/json/json_scan.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace hci_admission {
namespace dom = simdjson::dom;
namespace {

// Documents up to this size are parsed by the thread's own parser, which
// keeps its memory for the next one (simdjson sizes it for the worst case,
// about 15 bytes a byte of capacity: about 1 MiB a thread); a larger one
// gets a parser of its own, freed with it. A 6 KB review is the usual.
constexpr size_t kKeptCapacity = 64u << 10;

// What simdjson may touch for one document: the padded copy and the
// unescaped strings (up to twice the text), and about 24 bytes a value
// (index and tape: 6.7 MiB of zeros, 3.35 million values, took 87 MiB).
// A document over kKeptCapacity has its values counted first and is
// refused past this limit, which no memory budget would otherwise cover.
// An ordinary 3 MiB UPDATE review (two 1.5 MiB objects, etcd's limit, a
// value every 8 bytes) needs about 15 MiB.
constexpr size_t kParseMemoryLimit = 32u << 20;

// A syntax error's byte is found again by nlohmann's parser, at 20 to 35 ns
// a byte: only for documents up to this size, so that an invalid 7 MiB
// body costs no more than reading it (the tail of a message beyond it says
// nothing where).
constexpr size_t kLocatedErrors = 64u << 10;

// Structural characters, an upper bound on the values (those in strings
// count too).
size_t structural_characters(std::string_view text) {
  size_t n = 0;
  for (const char c : text) n += (c == ',') | (c == ':') | (c == '[') | (c == '{');
  return n;
}

// Where and why the text is not JSON. simdjson says only what kind of
// error it met; nlohmann's SAX parser, which builds nothing, finds the
// byte, on this path alone.
class ErrorFinder : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t &) override { return true; }
  bool string(string_t &) override { return true; }
  bool binary(binary_t &) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t &) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string &, const nlohmann::detail::exception &e) override {
    offset = position > 0 ? position - 1 : 0;
    // "[json.exception.parse_error.101] parse error at line 1, column 7:
    // syntax error while parsing value - invalid literal; last read: 'tru'"
    std::string what = e.what();
    const size_t column = what.find(", column ");
    const size_t colon = what.find(": ", column == std::string::npos ? 0 : column);
    if (e.id == 406) {  // out_of_range: a number beyond a double
      message = "number out of range";
    } else {
      message = colon == std::string::npos ? what : what.substr(colon + 2);
      // "; last read: '...'" would echo the client's text, of any length
      // and any bytes, into the answer and the log.
      const size_t echo = message.find("; last read:");
      if (echo != std::string::npos) message.resize(echo);
    }
    return false;
  }
  size_t offset = JsonSyntaxError::npos;
  std::string message;
};

[[noreturn]] void fail(std::string_view text, simdjson::error_code code, size_t max_depth) {
  if (code == simdjson::DEPTH_ERROR) {
    throw JsonSyntaxError("JSON nested too deeply (more than " + std::to_string(max_depth) + " levels)",
                          JsonSyntaxError::npos);
  }
  if (text.size() <= kLocatedErrors) {
    ErrorFinder finder;
    nlohmann::json::sax_parse(text.begin(), text.end(), &finder);
    if (!finder.message.empty()) throw JsonSyntaxError(finder.message, finder.offset);
  }
  if (code == simdjson::NUMBER_ERROR) {
    throw JsonSyntaxError("number out of range (an integer beyond 64 bits)", JsonSyntaxError::npos);
  }
  throw JsonSyntaxError(simdjson::error_message(code), JsonSyntaxError::npos);
}

}  // namespace

namespace {

// Refuses a large document too dense with values to index within the limit.
void check_parse_memory(std::string_view text) {
  if (text.size() <= kKeptCapacity) return;
  const size_t structurals = structural_characters(text);
  if (2 * text.size() + 24 * structurals > kParseMemoryLimit) {
    throw JsonTooLarge(std::to_string(structurals) + " values in " + std::to_string(text.size()) +
                       " bytes would take more than " + std::to_string(kParseMemoryLimit >> 20) +
                       " MiB to read");
  }
}

}  // namespace

static_assert(kJsonPadding >= simdjson::SIMDJSON_PADDING);

void ParsedJson::parse(std::string_view text, size_t max_depth, bool padded) {
  if (text.empty()) {
    text = "";  // simdjson copies from the pointer even for no bytes
    padded = false;
  }
  if (parser_->max_depth() != max_depth &&
      parser_->allocate(std::max(parser_->capacity(), text.size()), max_depth) != simdjson::SUCCESS) {
    throw std::bad_alloc();
  }
  // Unless padded, copied into the parser's padded buffer: simdjson reads
  // up to 64 bytes past the end, which the caller's buffer need not have.
  const simdjson::error_code error = parser_->parse(text.data(), text.size(), !padded).error();
  if (error != simdjson::SUCCESS) fail(text, error, max_depth);
}

ParsedJson::ParsedJson(std::string_view text, size_t max_depth)
    : ParsedJson(text, text.size() <= kKeptCapacity ? &thread_reader() : nullptr, max_depth) {}

ParsedJson::ParsedJson(PaddedText text, size_t max_depth)
    : ParsedJson(text.text, text.text.size() <= kKeptCapacity ? &thread_reader() : nullptr, max_depth, true) {
}

ParsedJson::ParsedJson(std::string_view text, JsonReader &reader, size_t max_depth)
    : ParsedJson(text, &reader, max_depth) {}

ParsedJson::ParsedJson(std::string_view text, OwnParser, size_t max_depth)
    : ParsedJson(text, static_cast<JsonReader *>(nullptr), max_depth) {}

// With `reader`'s parser unless there is none or a document of it is still
// open; otherwise with a parser of its own.
ParsedJson::ParsedJson(std::string_view text, JsonReader *reader, size_t max_depth, bool padded) {
  check_parse_memory(text);
  if (reader != nullptr && !reader->in_use_) {
    parser_ = reader->parser_.get();
  } else {
    own_ = std::make_unique<dom::parser>();
    parser_ = own_.get();
    reader = nullptr;
  }
  parse(text, max_depth, padded);
  reader_ = reader;
  if (reader_ != nullptr) reader_->in_use_ = true;
}

JsonReader::JsonReader() : parser_(std::make_unique<dom::parser>()) {}
JsonReader::~JsonReader() = default;

// The calling thread's reader for documents up to kKeptCapacity.
JsonReader &ParsedJson::thread_reader() {
  thread_local JsonReader reader;
  return reader;
}

ParsedJson::~ParsedJson() {
  if (reader_ != nullptr) reader_->in_use_ = false;
}

dom::element ParsedJson::root() const { return parser_->doc.root(); }

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
      node = node->child_or_new(token);
      start = slash + 1;
    }
    node->whole_ = true;
  }
  return root;
}

const FieldMask *FieldMask::child(std::string_view key) const {
  for (const auto &[name, mask] : children_) {
    if (name.size() == key.size() && name == key) return &mask;
  }
  return nullptr;
}

FieldMask *FieldMask::child_or_new(const std::string &key) {
  for (auto &[name, mask] : children_) {
    if (name == key) return &mask;
  }
  return &children_.emplace_back(key, FieldMask()).second;
}

Json FieldMask::extract(dom::element value) const {
  if (whole_ || !value.is_object()) return to_json(value);
  Json out = Json::object();
  for (const dom::key_value_pair member : dom::object(value.get_object().value_unsafe())) {
    const FieldMask *mask = child(member.key);
    if (mask != nullptr) out[JsonString(member.key)] = mask->extract(member.value);
  }
  return out;
}

Json to_json(dom::element value) {
  switch (value.type()) {
    case dom::element_type::OBJECT: {
      Json out = Json::object();
      // A key given twice keeps its last value, as nlohmann's parser does.
      for (const dom::key_value_pair member : dom::object(value.get_object().value_unsafe())) {
        out[JsonString(member.key)] = to_json(member.value);
      }
      return out;
    }
    case dom::element_type::ARRAY: {
      const dom::array elements = value.get_array().value_unsafe();
      Json out = Json::array();
      out.get_ref<Json::array_t &>().reserve(elements.size());
      for (const dom::element e : elements) out.push_back(to_json(e));
      return out;
    }
    case dom::element_type::STRING:
      return Json(JsonString(value.get_string().value_unsafe()));
    case dom::element_type::INT64:
      return Json(value.get_int64().value_unsafe());
    case dom::element_type::UINT64:
      return Json(value.get_uint64().value_unsafe());
    case dom::element_type::DOUBLE:
      return Json(value.get_double().value_unsafe());
    case dom::element_type::BOOL:
      return Json(value.get_bool().value_unsafe());
    case dom::element_type::NULL_VALUE:
      break;
  }
  return Json(nullptr);
}

namespace {
static_assert(sizeof(dom::element) <= 16 && std::is_trivially_copyable_v<dom::element>);
static_assert(sizeof(dom::array::iterator) <= 16 && std::is_trivially_copyable_v<dom::array::iterator>);
}  // namespace

JsonView::JsonView(dom::element value, const FieldMask *mask)
    : mask_(mask != nullptr && !mask->keeps_everything() ? mask : nullptr), present_(true) {
  std::memcpy(element_, &value, sizeof value);
}

dom::element JsonView::element() const {
  dom::element value;
  std::memcpy(&value, element_, sizeof value);
  return value;
}

bool JsonView::is_null() const { return present_ && element().is_null(); }
bool JsonView::is_object() const { return present_ && element().is_object(); }
bool JsonView::is_array() const { return present_ && element().is_array(); }
bool JsonView::is_string() const { return present_ && element().is_string(); }

JsonView JsonView::operator[](std::string_view key) const {
  JsonView found;
  find_members(&key, &found, 1);
  return found;
}

void JsonView::find_members(const std::string_view *keys, JsonView *out, size_t count) const {
  // Up to 8 keys a pass (callers ask for 1 to 4); more go round again.
  constexpr size_t kPass = 8;
  if (count > kPass) {
    find_members(keys, out, kPass);
    find_members(keys + kPass, out + kPass, count - kPass);
    return;
  }
  if (!present_) return;
  const dom::element self = element();
  if (!self.is_object()) return;
  // Most members are not asked for: a mask of the asked-for lengths
  // passes them over in a few instructions.
  const FieldMask *masks[kPass];
  uint64_t lengths = 0;
  for (size_t i = 0; i < count; ++i) {
    masks[i] = mask_ == nullptr ? nullptr : mask_->child(keys[i]);
    if (mask_ == nullptr || masks[i] != nullptr)
      lengths |= uint64_t{1} << std::min<size_t>(keys[i].size(), 63);
  }
  if (lengths == 0) return;
  const dom::object object = self.get_object().value_unsafe();
  for (auto it = object.begin(), end = object.end(); it != end; ++it) {
    const std::string_view key = it.key();
    if ((lengths >> std::min<size_t>(key.size(), 63) & 1) == 0) continue;
    for (size_t i = 0; i < count; ++i) {
      if (key != keys[i] || (mask_ != nullptr && masks[i] == nullptr)) continue;
      // The last of a key given twice counts, as in the tree.
      out[i] = JsonView(it.value(), masks[i]);
    }
  }
}

std::string_view JsonView::string() const {
  return is_string() ? element().get_string().value_unsafe() : std::string_view();
}

JsonView::Iterator JsonView::begin() const {
  Iterator out;
  if (!is_array()) return out;
  const dom::array::iterator it = dom::array(element().get_array().value_unsafe()).begin();
  std::memcpy(out.iterator_, &it, sizeof it);
  out.valid_ = true;
  return out;
}

JsonView::Iterator JsonView::end() const {
  Iterator out;
  if (!is_array()) return out;
  const dom::array::iterator it = dom::array(element().get_array().value_unsafe()).end();
  std::memcpy(out.iterator_, &it, sizeof it);
  out.valid_ = true;
  return out;
}

JsonView JsonView::Iterator::operator*() const {
  dom::array::iterator it;
  std::memcpy(&it, iterator_, sizeof it);
  return JsonView(*it, nullptr);  // the mask keeps an array whole
}

JsonView::Iterator &JsonView::Iterator::operator++() {
  dom::array::iterator it;
  std::memcpy(&it, iterator_, sizeof it);
  ++it;
  std::memcpy(iterator_, &it, sizeof it);
  return *this;
}

bool JsonView::Iterator::operator!=(const Iterator &other) const {
  if (!valid_ || !other.valid_) return valid_ != other.valid_;
  dom::array::iterator a, b;
  std::memcpy(&a, iterator_, sizeof a);
  std::memcpy(&b, other.iterator_, sizeof b);
  return a != b;
}

Json JsonView::to_json() const {
  if (!present_) return Json();
  return mask_ != nullptr ? mask_->extract(element()) : hci_admission::to_json(element());
}

}  // namespace hci_admission
