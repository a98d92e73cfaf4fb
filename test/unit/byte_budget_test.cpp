#include "hci_admission/net/byte_budget.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

using namespace hci_admission;

TEST_CASE("a take fits whole or takes nothing", "[budget]") {
  ByteBudget budget(1000, 100, 250, 1000);
  CHECK(budget.take(600, false, "a"));
  CHECK_FALSE(budget.take(401, false, "a"));
  CHECK(budget.held() == 600);  // the refused take left nothing behind
  CHECK(budget.take(400, false, "a"));
  CHECK(budget.held() == 1000);
  budget.give_back(1000, false, "a");
  CHECK(budget.held() == 0);
}

TEST_CASE("large requests leave the reserve to ordinary ones", "[budget]") {
  ByteBudget budget(1000, 100, 250, 1000);
  CHECK(budget.is_large(101));
  CHECK_FALSE(budget.is_large(100));
  CHECK(budget.largest_grant(true) == 750);
  CHECK(budget.largest_grant(false) == 1000);
  CHECK(budget.take(700, true, "a"));
  CHECK_FALSE(budget.take(51, true, "a"));  // would reach into the reserve
  CHECK(budget.take(50, true, "a"));
  // Large bodies hold all they may: ordinary requests still find 250 bytes.
  CHECK(budget.take(100, false, "a"));
  CHECK(budget.take(150, false, "a"));
  CHECK_FALSE(budget.take(1, false, "a"));
  budget.give_back(100, false, "a");
  CHECK_FALSE(budget.take(1, true, "a"));  // the room that came back is in the reserve
  CHECK(budget.take(100, false, "a"));
  budget.give_back(750, true, "a");
  CHECK(budget.take(750, true, "a"));
}

TEST_CASE("ordinary requests may use the large share too", "[budget]") {
  ByteBudget budget(1000, 100, 250, 1000);
  CHECK(budget.take(900, false, "a"));  // past the large share
  CHECK(budget.take(100, true, "a"));   // large takes fit while the total has room
  CHECK_FALSE(budget.take(1, false, "a"));
  CHECK(budget.held() == 1000);
}

TEST_CASE("answers are counted even past the limit, and block takes until written", "[budget]") {
  ByteBudget budget(1000, 100, 250, 1000);
  budget.take_anyway(1200, "a");
  CHECK(budget.held() == 1200);
  CHECK_FALSE(budget.take(1, false, "a"));
  budget.give_back(1200, false, "a");
  CHECK(budget.take(1, false, "a"));
}

TEST_CASE("a reserve larger than the budget leaves large requests nothing", "[budget]") {
  ByteBudget budget(100, 10, 500, 100);
  CHECK(budget.largest_grant(true) == 0);
  CHECK_FALSE(budget.take(1, true, "a"));
  CHECK(budget.take(100, false, "a"));
}

TEST_CASE("one client address holds at most its share, and others still find room", "[budget]") {
  ByteBudget budget(1000, 100, 250, 500);
  CHECK(budget.client_share() == 500);
  // Many ordinary requests from one address: it stops at its share...
  int taken = 0;
  while (budget.take(100, false, "flood")) ++taken;
  CHECK(taken == 5);
  CHECK(budget.held_by("flood") == 500);
  // ...and another address still gets the rest, ordinary and large alike.
  CHECK(budget.take(100, false, "apiserver"));
  CHECK(budget.take(150, true, "apiserver"));
  CHECK(budget.held_by("apiserver") == 250);
  // What comes back goes back to its owner's share, and then is free again.
  budget.give_back(100, false, "flood");
  CHECK(budget.held_by("flood") == 400);
  CHECK(budget.take(100, false, "flood"));
  CHECK_FALSE(budget.take(1, false, "flood"));
  budget.give_back(500, false, "flood");
  budget.give_back(100, false, "apiserver");
  budget.give_back(150, true, "apiserver");
  CHECK(budget.held() == 0);
  CHECK(budget.held_by("flood") == 0);
}

TEST_CASE("a client's answers count in its share: its requests wait for them", "[budget]") {
  ByteBudget budget(1000, 100, 250, 500);
  budget.take_anyway(450, "slow reader");
  CHECK(budget.held_by("slow reader") == 450);
  CHECK_FALSE(budget.take(100, false, "slow reader"));
  CHECK(budget.take(100, false, "other"));
  budget.give_back(450, false, "slow reader");
  CHECK(budget.take(100, false, "slow reader"));
}

TEST_CASE("the largest grant is what one client may hold, if that is less", "[budget]") {
  ByteBudget budget(1000, 100, 250, 300);
  CHECK(budget.largest_grant(true) == 300);
  CHECK(budget.largest_grant(false) == 300);
  ByteBudget wide(1000, 100, 250, 5000);  // a share over the limit is the limit
  CHECK(wide.client_share() == 1000);
  CHECK(wide.largest_grant(true) == 750);
  CHECK(wide.largest_grant(false) == 1000);
}

TEST_CASE("takes from many threads never pass the limit", "[budget]") {
  ByteBudget budget(10000, 100, 2500, 10000);
  std::vector<std::thread> threads;
  std::atomic<size_t> most{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        const bool large = (i + t) % 2 == 0;
        if (budget.take(300, large, "a")) {
          size_t held = budget.held();
          size_t seen = most.load();
          while (held > seen && !most.compare_exchange_weak(seen, held)) {
          }
          budget.give_back(300, large, "a");
        }
      }
    });
  }
  for (auto &t : threads) t.join();
  CHECK(budget.held() == 0);
  CHECK(most.load() <= 10000);
}
