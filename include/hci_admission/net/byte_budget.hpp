// The bytes the server holds for its clients beyond what each connection may
// hold by itself: request bodies being read and answers not yet written.
#pragma once

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace hci_admission {

// One budget shared by the event loops. A take either fits whole or takes
// nothing, and the server takes all a request can need in one take (the
// body's size, or for a chunked body the most it may grow to), so a request
// never holds part of what it needs while waiting for the rest: two
// half-read bodies cannot block each other. Requests larger
// than `ordinary_request` may together hold at most the limit less
// `reserve`: bodies of that size are never what kube-apiserver sends for the
// objects we watch, so they cannot crowd out the reviews it does send.
// And one client address may hold at most `client_share`, whatever the size
// of its requests: with a share of at most half the limit, many mid-size
// bodies from one address (each an ordinary request) leave the other half
// to everyone else, kube-apiserver among them.
// A mutex, not atomics: the counts change together, and takes happen
// only for requests over the per-connection allowance (a 6 KB review never
// comes here).
class ByteBudget {
 public:
  ByteBudget(size_t limit, size_t ordinary_request, size_t reserve, size_t client_share)
      : limit_(limit),
        ordinary_request_(ordinary_request),
        reserve_(std::min(reserve, limit)),
        client_share_(std::min(client_share, limit)) {}

  bool is_large(size_t request_size) const { return request_size > ordinary_request_; }
  // The most one request of that kind could ever be given.
  size_t largest_grant(bool large) const {
    return std::min(large ? limit_ - reserve_ : limit_, client_share_);
  }

  // Takes n bytes for `client` (its address) when they fit; false, taking
  // nothing, when they do not.
  bool take(size_t n, bool large, const std::string &client) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (held_ + n > limit_ || (large && large_held_ + n > limit_ - reserve_)) return false;
    auto it = by_client_.find(client);
    const size_t client_held = it == by_client_.end() ? 0 : it->second;
    if (client_held + n > client_share_) return false;
    if (it == by_client_.end()) it = by_client_.emplace(client, 0).first;
    it->second += n;
    held_ += n;
    if (large) large_held_ += n;
    return true;
  }
  // Answers cannot wait for room: they are taken even past the limit and
  // the client's share (the loops then read nothing more until they are
  // written, and that client's requests wait for its answers).
  void take_anyway(size_t n, const std::string &client) {
    std::lock_guard<std::mutex> lock(mutex_);
    held_ += n;
    by_client_[client] += n;
  }
  void give_back(size_t n, bool large, const std::string &client) {
    std::lock_guard<std::mutex> lock(mutex_);
    held_ -= n;
    if (large) large_held_ -= n;
    auto it = by_client_.find(client);
    if (it != by_client_.end() && (it->second -= n) == 0) by_client_.erase(it);
  }

  size_t limit() const { return limit_; }
  size_t client_share() const { return client_share_; }
  size_t held() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return held_;
  }
  size_t held_by(const std::string &client) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = by_client_.find(client);
    return it == by_client_.end() ? 0 : it->second;
  }

 private:
  const size_t limit_;
  const size_t ordinary_request_;
  const size_t reserve_;
  const size_t client_share_;
  mutable std::mutex mutex_;
  size_t held_ = 0;
  size_t large_held_ = 0;
  std::unordered_map<std::string, size_t> by_client_;  // only addresses holding something
};

}  // namespace hci_admission
