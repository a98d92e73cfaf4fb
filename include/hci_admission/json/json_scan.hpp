// Reading only the parts of a large JSON document that are needed.
//
// nlohmann::json lexes every byte into a tree (measured: 71 us for a 6 KB
// Pod review, before any tree is built), and an admission policy reads a
// few hundred bytes of it. validate_json() checks the whole text strictly
// and quickly; JsonView then walks the checked text without building it,
// and nlohmann parses just the members a policy asked for.
#pragma once

#include "hci_admission/json/json.hpp"

#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hci_admission {

class JsonSyntaxError : public std::runtime_error {
 public:
  JsonSyntaxError(const std::string &what, size_t offset)
      : std::runtime_error(what + " at byte " + std::to_string(offset)), offset_(offset) {}
  size_t offset() const { return offset_; }

 private:
  size_t offset_;
};

// Where each object and array of a checked text ends, so that walking the
// text skips a subtree without reading it again.
class JsonIndex {
 public:
  explicit JsonIndex(std::string_view text) : text_(text) {}
  std::string_view text() const { return text_; }
  // The offset just past the container that opens at `start`.
  size_t container_end(size_t start) const;

 private:
  friend class JsonValidator;
  std::string_view text_;
  struct Container {
    uint32_t open;   // offset of the bracket
    uint32_t end;    // offset just past the closing bracket
    uint32_t after;  // index of the first container opened after this one closes
  };
  std::vector<Container> containers_;  // in the order they open
  // A walk asks in document order: for the first child of the container it
  // last skipped (it descends) or for the next sibling (it moves on).
  // Checking those two first avoids a binary search per member. One walker
  // per index at a time.
  mutable size_t child_ = 0;
  mutable size_t sibling_ = 0;
};

// Throws JsonSyntaxError unless `text` is exactly one JSON value (RFC 8259)
// in valid UTF-8, nested at most `max_depth` deep. The index refers to
// `text`, which must outlive it.
JsonIndex validate_json(std::string_view text, size_t max_depth = 512);

// One value inside text that validate_json accepted. Cheap to copy.
class JsonView {
 public:
  // The whole document, less surrounding white space.
  explicit JsonView(const JsonIndex &index);
  JsonView(std::string_view raw, const JsonIndex *index) : raw_(raw), index_(index) {}

  std::string_view raw() const { return raw_; }
  bool is_object() const { return !raw_.empty() && raw_.front() == '{'; }
  bool is_array() const { return !raw_.empty() && raw_.front() == '['; }
  bool is_string() const { return !raw_.empty() && raw_.front() == '"'; }
  bool is_null() const { return raw_ == "null"; }
  bool is_bool() const { return raw_ == "true" || raw_ == "false"; }

  // The unescaped text of a string value; call only when is_string().
  std::string string_value() const;
  // The value as a tree, built from the checked text (nlohmann's lexer
  // would read it all again, at several times the cost).
  Json parse() const;

  // Calls f(value) for each element of an array, in order.
  template <class F>
  void for_each_element(F &&f) const {
    size_t pos = skip_space(1);  // after '['
    while (raw_[pos] != ']') {
      if (raw_[pos] == ',') pos = skip_space(pos + 1);
      const size_t end = skip_value(pos);
      f(JsonView(raw_.substr(pos, end - pos), index_));
      pos = skip_space(end);
    }
  }

  // Calls f(key, value) for each member of an object, in document order.
  template <class F>
  void for_each_member(F &&f) const {
    size_t pos = 1;  // after '{'
    std::string unescaped;
    for (;;) {
      pos = skip_space(pos);
      if (raw_[pos] == '}') return;
      if (raw_[pos] == ',') pos = skip_space(pos + 1);
      const size_t key_end = skip_value(pos);
      std::string_view key = raw_.substr(pos + 1, key_end - pos - 2);
      if (key.find('\\') != std::string_view::npos) {
        unescaped = JsonView(raw_.substr(pos, key_end - pos), index_).string_value();
        key = unescaped;
      }
      pos = skip_space(key_end);
      pos = skip_space(pos + 1);  // ':'
      const size_t value_end = skip_value(pos);
      f(key, JsonView(raw_.substr(pos, value_end - pos), index_));
      pos = value_end;
    }
  }

 private:
  size_t skip_space(size_t pos) const;
  size_t skip_value(size_t pos) const;
  std::string_view raw_;
  const JsonIndex *index_;
};

// Which parts of an object to keep, from JSON Pointers such as
// "/metadata/labels"; a pointer keeps everything below it.
class FieldMask {
 public:
  static FieldMask everything();
  static FieldMask nothing() { return FieldMask(); }
  static FieldMask of(const std::vector<std::string> &pointers);

  // The value with only the masked parts: objects on the way to a kept
  // member keep just those members. A value that is not an object where
  // the mask goes deeper is kept whole, so a policy still sees a bad shape.
  Json extract(JsonView value) const;
  bool keeps_everything() const { return whole_; }
  bool keeps_nothing() const { return !whole_ && children_.empty(); }

 private:
  bool whole_ = false;
  std::map<std::string, FieldMask, std::less<>> children_;
};

}  // namespace hci_admission
