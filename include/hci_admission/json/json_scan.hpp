// Reading only the parts of a large JSON document that are needed.
//
// A review is 6 KB of which a policy reads a few hundred bytes. simdjson
// checks the whole text strictly and indexes it (its DOM "tape": every
// value knows where it ends, strings are unescaped once), without one heap
// node per value; FieldMask then builds a Json tree of just the members a
// policy asked for. Measured on a 6 KB Pod review, validating took 4.1 us
// with the hand-written validator this replaced and 1.9 us with simdjson
// (natively, its AVX-512 kernel; under callgrind's AVX2 kernel 45.5k
// instructions against 48.6k), and walking the tape to the masked members
// is a few pointer steps where the scanner re-read the text.
#pragma once

#include "hci_admission/json/json.hpp"

#include <array>
#include <cstddef>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace simdjson::dom {
class element;
class parser;
}  // namespace simdjson::dom

namespace hci_admission {

// The text is not one valid JSON value. offset() is where it goes wrong,
// or npos where that is not known (a number that fits no 64-bit integer
// or double, nesting too deep).
class JsonSyntaxError : public std::runtime_error {
 public:
  static constexpr size_t npos = static_cast<size_t>(-1);
  JsonSyntaxError(const std::string &what, size_t offset)
      : std::runtime_error(offset == npos ? what : what + " at byte " + std::to_string(offset)),
        offset_(offset) {}
  size_t offset() const { return offset_; }

 private:
  size_t offset_;
};

// A document whose values would take more memory to index than one
// request may have (ParsedJson says how much).
class JsonTooLarge : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One checked, indexed document. Throws JsonSyntaxError unless `text` is
// exactly one JSON value (RFC 8259) in valid UTF-8, nested at most
// `max_depth` deep, whose numbers fit a 64-bit integer or a double (Go's
// decoder and nlohmann hold no more; kube-apiserver never writes more).
//
// Throws JsonTooLarge for a document over 64 KiB so dense with values that
// indexing it would take over 32 MiB. Each thread keeps one parser for
// documents up to 64 KiB and reuses it, so an ordinary review allocates
// nothing here; a larger document gets a parser of its own, freed with it
// (simdjson sizes its index for the worst case, several times the
// document). A syntax error names its byte for documents up to 64 KiB.
// The views it hands out live as long as it does.
class JsonReader;

// Text followed by at least kJsonPadding readable bytes, whatever they
// hold (a std::string's capacity past its size will do): parsed where it
// is. Any other text is first copied into the parser's padded buffer,
// 580 instructions of a 6 KB review's 102k (callgrind).
constexpr size_t kJsonPadding = 64;
struct PaddedText {
  std::string_view text;
};

class ParsedJson {
 public:
  explicit ParsedJson(std::string_view text, size_t max_depth = 512);
  explicit ParsedJson(PaddedText text, size_t max_depth = 512);
  // With `reader`'s parser, whatever the size.
  ParsedJson(std::string_view text, JsonReader &reader, size_t max_depth = 512);
  // With a parser of its own, whatever the size: for a document that will
  // be read on another thread than this one (the thread's kept parser is
  // this thread's alone).
  struct OwnParser {};
  ParsedJson(std::string_view text, OwnParser, size_t max_depth = 512);
  ~ParsedJson();
  ParsedJson(const ParsedJson &) = delete;
  ParsedJson &operator=(const ParsedJson &) = delete;

  simdjson::dom::element root() const;

 private:
  ParsedJson(std::string_view text, JsonReader *reader, size_t max_depth, bool padded = false);
  static JsonReader &thread_reader();
  void parse(std::string_view text, size_t max_depth, bool padded);
  simdjson::dom::parser *parser_;
  std::unique_ptr<simdjson::dom::parser> own_;  // when no reader is free for it
  JsonReader *reader_ = nullptr;                // the reader whose parser it holds
};

// A parser kept for a run of documents read one after another, as a LIST's
// pages are: a fresh parser for each 1 MB page made the upgrade guard's
// reads twice as slow (page faults on fresh memory, perf: a quarter of the
// time). Its memory goes with it.
class JsonReader {
 public:
  JsonReader();
  ~JsonReader();
  JsonReader(const JsonReader &) = delete;
  JsonReader &operator=(const JsonReader &) = delete;

 private:
  friend class ParsedJson;
  std::unique_ptr<simdjson::dom::parser> parser_;
  bool in_use_ = false;
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
  Json extract(simdjson::dom::element value) const;
  bool keeps_everything() const { return whole_; }
  bool keeps_nothing() const { return !whole_ && children_.empty(); }
  // The mask of member `key`: null when the member is not kept.
  const FieldMask *child(std::string_view key) const;

 private:
  FieldMask *child_or_new(const std::string &key);

  bool whole_ = false;
  // A policy names a handful of members a level, so a list looked up
  // length first: a std::map took 134 instructions a lookup, 670 of the
  // CSI Pod review's (callgrind).
  std::vector<std::pair<std::string, FieldMask>> children_;
};

// The whole value as a Json tree.
Json to_json(simdjson::dom::element value);

// A read-only view of one value of a parsed document, limited to what a
// FieldMask keeps: a member the mask leaves out reads as absent, as it
// would in the tree FieldMask::extract builds. Nothing is copied or
// allocated; the view is valid while its ParsedJson lives. For the CSI
// Pod review, building and freeing the masked tree instead took 20k of
// 135k instructions (callgrind).
class JsonView {
 public:
  class Iterator;

  JsonView() = default;  // absent
  // `mask` (null: everything) must outlive the view.
  JsonView(simdjson::dom::element value, const FieldMask *mask);

  bool exists() const { return present_; }  // a null value exists
  bool is_null() const;
  bool is_object() const;
  bool is_array() const;
  bool is_string() const;
  // The member `key`; absent unless this is an object with that member,
  // kept by the mask.
  JsonView operator[](std::string_view key) const;
  // Several members at once, in the order of `keys`:
  //   auto [key, op] = toleration.members({"key", "operator"});
  // The last of a key given twice counts, so every lookup reads the whole
  // object; this reads it once for all N. (Walking members is most of the
  // cost: about 2.2k of the CSI Pod review's 99k instructions, callgrind.)
  template <size_t N>
  std::array<JsonView, N> members(const std::string_view (&keys)[N]) const {
    std::array<JsonView, N> out;
    find_members(keys, out.data(), N);
    return out;
  }
  // The same for keys known at run time: out[i] for keys[i], i < count.
  void find_members(const std::string_view *keys, JsonView *out, size_t count) const;
  // The string; "" for any other value.
  std::string_view string() const;
  // An array's elements (nothing for any other value).
  Iterator begin() const;
  Iterator end() const;
  // The value as a Json tree, with what the mask keeps.
  Json to_json() const;

 private:
  simdjson::dom::element element() const;

  alignas(8) unsigned char element_[16] = {};  // a simdjson::dom::element
  const FieldMask *mask_ = nullptr;
  bool present_ = false;
};

class JsonView::Iterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = JsonView;
  using difference_type = std::ptrdiff_t;
  using pointer = void;
  using reference = JsonView;

  JsonView operator*() const;
  Iterator &operator++();
  bool operator!=(const Iterator &other) const;
  bool operator==(const Iterator &other) const { return !(*this != other); }

 private:
  friend class JsonView;
  alignas(8) unsigned char iterator_[16] = {};  // a simdjson::dom::array::iterator
  bool valid_ = false;
};

}  // namespace hci_admission
