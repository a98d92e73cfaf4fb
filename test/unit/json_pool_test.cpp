#include "hci_admission/json/json.hpp"

#include <catch2/catch.hpp>

#include <thread>
#include <vector>

using hci_admission::Json;
using hci_admission::pool_allocate;
using hci_admission::pool_deallocate;
using hci_admission::pool_stats;

TEST_CASE("a freed tree node is reused by the next allocation of its size", "[json_pool]") {
  void *a = pool_allocate(80);
  pool_deallocate(a, 80);
  // Any size in the same 16-byte step takes the block just freed.
  void *b = pool_allocate(70);
  CHECK(b == a);
  pool_deallocate(b, 70);
  // A different step does not.
  void *c = pool_allocate(96);
  CHECK(c != a);
  pool_deallocate(c, 96);
}

TEST_CASE("large blocks bypass the free lists", "[json_pool]") {
  const auto before = pool_stats();
  void *big = pool_allocate(4096);
  pool_deallocate(big, 4096);
  CHECK(pool_stats().blocks == before.blocks);
}

TEST_CASE("a thread keeps a bounded number of free blocks", "[json_pool]") {
  std::thread([] {
    CHECK(pool_stats().blocks == 0);
    std::vector<void *> blocks;
    for (int i = 0; i < 10000; ++i) blocks.push_back(pool_allocate(48));
    for (void *b : blocks) pool_deallocate(b, 48);
    // 256 of that size; the rest went back to the heap.
    CHECK(pool_stats().blocks == 256);
    CHECK(pool_stats().bytes == 256 * 48);
  }).join();
}

TEST_CASE("trees built on one thread and freed on another stay whole", "[json_pool]") {
  Json tree;
  std::thread([&] {
    for (int i = 0; i < 500; ++i)
      tree["k" + std::to_string(i)] = {{"a", {1, 2, 3}}, {"b", "a longer string value"}};
  }).join();
  CHECK(tree.size() == 500);
  CHECK(tree["k499"]["b"] == "a longer string value");
  const Json copy = tree;
  tree.clear();
  CHECK(copy.size() == 500);
  CHECK(copy.dump().find("\"k250\":{\"a\":[1,2,3]") != std::string::npos);
}

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>

TEST_CASE("a block on a free list stays poisoned for AddressSanitizer", "[json_pool]") {
  void *a = pool_allocate(80);
  CHECK_FALSE(__asan_address_is_poisoned(a));
  pool_deallocate(a, 80);
  // A use of a freed tree node is still reported although the block is kept.
  CHECK(__asan_address_is_poisoned(a));
  void *b = pool_allocate(80);
  REQUIRE(b == a);
  CHECK_FALSE(__asan_address_is_poisoned(static_cast<char *>(b) + 79));
  pool_deallocate(b, 80);
}
#endif
