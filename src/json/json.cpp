#include "hci_admission/json/json.hpp"

#include <new>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
// A block on a free list is poisoned, so that AddressSanitizer still
// reports a use of a tree node after it was freed.
#define POOL_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define POOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POOL_POISON(p, n) ((void)(p), (void)(n))
#define POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace hci_admission {
namespace {

// Sizes up to 256 bytes in 16-byte steps cover every node of a tree (map
// nodes are 80 bytes, the boxes of strings, arrays and objects 24 to 48)
// and the arrays of a few elements.
constexpr size_t kStep = 16;
constexpr size_t kClasses = 16;
// At most this many free blocks of a size stay with a thread: a review
// frees a few dozen of each, and a burst that built a large tree (a LIST
// page) gives the rest back. A thread keeps at most 544 KiB this way.
constexpr uint32_t kMaxFree = 256;

constexpr size_t block_bytes(size_t size_class) { return (size_class + 1) * kStep; }

struct FreeBlock {
  FreeBlock *next;
};

// Plain data so that a thread reaches it without an initialisation check.
struct FreeLists {
  FreeBlock *head[kClasses];
  uint32_t count[kClasses];
  // None: nothing kept yet, so nothing to give back; Keeping: given back
  // when the thread exits; Closed: the thread is exiting, blocks go
  // straight back.
  enum { None, Keeping, Closed } state;
};
thread_local FreeLists lists;

void release_all() noexcept {
  for (size_t c = 0; c < kClasses; ++c) {
    while (FreeBlock *b = lists.head[c]) {
      POOL_UNPOISON(b, block_bytes(c));
      lists.head[c] = b->next;
      ::operator delete(b);
    }
    lists.count[c] = 0;
  }
}

// Gives a thread's blocks back when it exits (idle workers do).
struct ReleaseAtExit {
  ~ReleaseAtExit() {
    release_all();
    lists.state = FreeLists::Closed;
  }
};

void register_cleanup() {
  static thread_local ReleaseAtExit at_exit;
  (void)at_exit;
  lists.state = FreeLists::Keeping;
}

}  // namespace

void *pool_allocate(size_t bytes) {
  const size_t c = (bytes - 1) / kStep;  // 0 bytes wraps to a large class
  if (c >= kClasses) return ::operator new(bytes);
  if (FreeBlock *b = lists.head[c]) {
    POOL_UNPOISON(b, block_bytes(c));
    lists.head[c] = b->next;
    --lists.count[c];
    return b;
  }
  return ::operator new(block_bytes(c));
}

void pool_deallocate(void *block, size_t bytes) noexcept {
  const size_t c = (bytes - 1) / kStep;
  if (c >= kClasses) {
    ::operator delete(block);
    return;
  }
  if (lists.state == FreeLists::None) register_cleanup();
  if (lists.state == FreeLists::Closed || lists.count[c] >= kMaxFree) {
    ::operator delete(block);
    return;
  }
  auto *b = static_cast<FreeBlock *>(block);
  b->next = lists.head[c];
  lists.head[c] = b;
  ++lists.count[c];
  POOL_POISON(b, block_bytes(c));
}

PoolStats pool_stats() {
  PoolStats s;
  for (size_t c = 0; c < kClasses; ++c) {
    s.blocks += lists.count[c];
    s.bytes += lists.count[c] * block_bytes(c);
  }
  return s;
}

}  // namespace hci_admission
