// The JSON tree type every part of the server uses: nlohmann's, with its
// nodes drawn from per-thread free lists instead of malloc.
//
// A review builds and frees a few hundred small tree nodes (the fields a
// policy reads, the desired state, the patch). Measured with callgrind on
// a 6 KB Pod review, malloc and free were a quarter of all instructions,
// most of it glibc's slow path: its per-thread cache keeps only seven
// blocks of a size, so the rest of a review's nodes went through the
// shared bins and were merged again before the next review. Here freed
// nodes stay with the thread, up to a bound, and the next review reuses
// them.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace hci_admission {

// Small blocks come from and go back to the calling thread's free lists;
// larger ones, and blocks past a list's bound, to operator new and delete.
// A block freed on another thread than the one that allocated it joins
// that thread's lists, which is as safe as any other block.
void *pool_allocate(size_t bytes);
void pool_deallocate(void *block, size_t bytes) noexcept;

// What the calling thread's free lists hold (blocks and their bytes), for
// tests.
struct PoolStats {
  size_t blocks = 0;
  size_t bytes = 0;
};
PoolStats pool_stats();

template <class T>
struct PooledAllocator {
  using value_type = T;
  PooledAllocator() noexcept = default;
  template <class U>
  PooledAllocator(const PooledAllocator<U> &) noexcept {}
  T *allocate(size_t n) { return static_cast<T *>(pool_allocate(n * sizeof(T))); }
  void deallocate(T *p, size_t n) noexcept { pool_deallocate(p, n * sizeof(T)); }
  friend bool operator==(const PooledAllocator &, const PooledAllocator &) { return true; }
  friend bool operator!=(const PooledAllocator &, const PooledAllocator &) { return false; }
};

// Strings of a tree, its values and keys, from the same free lists: a CSI
// Pod review allocated 58 strings longer than std::string keeps inline.
using JsonString = std::basic_string<char, std::char_traits<char>, PooledAllocator<char>>;

using Json = nlohmann::basic_json<std::map, std::vector, JsonString, bool, std::int64_t, std::uint64_t,
                                  double, PooledAllocator>;

// A JsonString compares with a std::string as text (found by argument-
// dependent lookup through PooledAllocator), so that objects are looked up
// by std::string keys as before. Templates, so that a Json, which converts
// to a string implicitly, never reaches them.
template <class S>
using IfJsonString = std::enable_if_t<std::is_same_v<S, JsonString>, int>;
template <class S, IfJsonString<S> = 0>
bool operator==(const S &a, const std::string &b) {
  return std::string_view(a) == b;
}
template <class S, IfJsonString<S> = 0>
bool operator==(const std::string &a, const S &b) {
  return a == std::string_view(b);
}
template <class S, IfJsonString<S> = 0>
bool operator!=(const S &a, const std::string &b) {
  return std::string_view(a) != b;
}
template <class S, IfJsonString<S> = 0>
bool operator!=(const std::string &a, const S &b) {
  return a != std::string_view(b);
}
template <class S, IfJsonString<S> = 0>
bool operator<(const S &a, const std::string &b) {
  return std::string_view(a) < b;
}
template <class S, IfJsonString<S> = 0>
bool operator<(const std::string &a, const S &b) {
  return a < std::string_view(b);
}
template <class S, IfJsonString<S> = 0>
std::string operator+(const std::string &a, const S &b) {
  std::string out(a);
  out.append(b.data(), b.size());
  return out;
}

// The value as compact JSON text in a std::string (Json::dump() gives a
// JsonString).
inline std::string json_text(const Json &value) {
  const JsonString text = value.dump();
  return std::string(text);
}

}  // namespace hci_admission
