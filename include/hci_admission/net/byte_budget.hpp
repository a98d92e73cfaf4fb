// The bytes the server holds for its clients beyond what each connection may
// hold by itself: request bodies being read and answers not yet written.
#pragma once

#include <cstddef>
#include <mutex>

namespace hci_admission {

// One budget shared by the event loops. A take either fits whole or takes
// nothing, and the server takes all a request can need in one take (the
// body's size, or for a chunked body the most it may grow to), so a request
// never holds part of what it needs while waiting for the rest: two
// half-read bodies cannot block each other. Requests larger
// than `ordinary_request` may together hold at most the limit less
// `reserve`: bodies of that size are never what kube-apiserver sends for the
// objects we watch, so they cannot crowd out the reviews it does send.
// A mutex, not atomics: the two counts change together, and takes happen
// only for requests over the per-connection allowance (a 6 KB review never
// comes here).
class ByteBudget {
 public:
  ByteBudget(size_t limit, size_t ordinary_request, size_t reserve)
      : limit_(limit), ordinary_request_(ordinary_request), reserve_(reserve < limit ? reserve : limit) {}

  bool is_large(size_t request_size) const { return request_size > ordinary_request_; }
  // The most one request of that kind could ever be given.
  size_t largest_grant(bool large) const { return large ? limit_ - reserve_ : limit_; }

  // Takes n bytes when they fit; false, taking nothing, when they do not.
  bool take(size_t n, bool large) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (held_ + n > limit_ || (large && large_held_ + n > limit_ - reserve_)) return false;
    held_ += n;
    if (large) large_held_ += n;
    return true;
  }
  // Answers cannot wait for room: they are taken even past the limit (the
  // loops then read nothing more until they are written).
  void take_anyway(size_t n) {
    std::lock_guard<std::mutex> lock(mutex_);
    held_ += n;
  }
  void give_back(size_t n, bool large) {
    std::lock_guard<std::mutex> lock(mutex_);
    held_ -= n;
    if (large) large_held_ -= n;
  }

  size_t limit() const { return limit_; }
  size_t held() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return held_;
  }

 private:
  const size_t limit_;
  const size_t ordinary_request_;
  const size_t reserve_;
  mutable std::mutex mutex_;
  size_t held_ = 0;
  size_t large_held_ = 0;
};

}  // namespace hci_admission
