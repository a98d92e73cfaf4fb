#include "hci_admission/net/byte_budget.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

using namespace hci_admission;

TEST_CASE("a take fits whole or takes nothing", "[budget]") {
  ByteBudget budget(1000, 100, 250);
  CHECK(budget.take(600, false));
  CHECK_FALSE(budget.take(401, false));
  CHECK(budget.held() == 600);  // the refused take left nothing behind
  CHECK(budget.take(400, false));
  CHECK(budget.held() == 1000);
  budget.give_back(1000, false);
  CHECK(budget.held() == 0);
}

TEST_CASE("large requests leave the reserve to ordinary ones", "[budget]") {
  ByteBudget budget(1000, 100, 250);
  CHECK(budget.is_large(101));
  CHECK_FALSE(budget.is_large(100));
  CHECK(budget.largest_grant(true) == 750);
  CHECK(budget.largest_grant(false) == 1000);
  CHECK(budget.take(700, true));
  CHECK_FALSE(budget.take(51, true));  // would reach into the reserve
  CHECK(budget.take(50, true));
  // Large bodies hold all they may: ordinary requests still find 250 bytes.
  CHECK(budget.take(100, false));
  CHECK(budget.take(150, false));
  CHECK_FALSE(budget.take(1, false));
  budget.give_back(100, false);
  CHECK_FALSE(budget.take(1, true));  // the room that came back is in the reserve
  CHECK(budget.take(100, false));
  budget.give_back(750, true);
  CHECK(budget.take(750, true));
}

TEST_CASE("ordinary requests may use the large share too", "[budget]") {
  ByteBudget budget(1000, 100, 250);
  CHECK(budget.take(900, false));  // past the large share
  CHECK(budget.take(100, true));   // large takes fit while the total has room
  CHECK_FALSE(budget.take(1, false));
  CHECK(budget.held() == 1000);
}

TEST_CASE("answers are counted even past the limit, and block takes until written", "[budget]") {
  ByteBudget budget(1000, 100, 250);
  budget.take_anyway(1200);
  CHECK(budget.held() == 1200);
  CHECK_FALSE(budget.take(1, false));
  budget.give_back(1200, false);
  CHECK(budget.take(1, false));
}

TEST_CASE("a reserve larger than the budget leaves large requests nothing", "[budget]") {
  ByteBudget budget(100, 10, 500);
  CHECK(budget.largest_grant(true) == 0);
  CHECK_FALSE(budget.take(1, true));
  CHECK(budget.take(100, false));
}

TEST_CASE("takes from many threads never pass the limit", "[budget]") {
  ByteBudget budget(10000, 100, 2500);
  std::vector<std::thread> threads;
  std::atomic<size_t> most{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        const bool large = (i + t) % 2 == 0;
        if (budget.take(300, large)) {
          size_t held = budget.held();
          size_t seen = most.load();
          while (held > seen && !most.compare_exchange_weak(seen, held)) {
          }
          budget.give_back(300, large);
        }
      }
    });
  }
  for (auto &t : threads) t.join();
  CHECK(budget.held() == 0);
  CHECK(most.load() <= 10000);
}
