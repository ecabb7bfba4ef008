// apps/rtb/pacer_test.cc — whole simulated days, driven by an injected clock and a seeded random
// source: the budget is spread over the day, whatever the traffic, and never overspent.
#include "apps/rtb/pacer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

namespace mnv::rtb {
namespace {

constexpr std::int64_t kDay0 = 20'000 * Pacer::kDayMs;  // a midnight, UTC
constexpr std::int64_t kHourMs = 3'600'000;
constexpr Micros kPrice = 2'000;          // one impression at a 2.00 USD CPM
constexpr Micros kBudget = 100'000'000;   // 100 USD a day: 50,000 impressions

struct Rng {
  std::uint64_t s = 0x9e3779b97f4a7c15ull;
  std::uint32_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return static_cast<std::uint32_t>(s >> 32);
  }
};

// Runs `pacer` from `from` for `ms`, with auctions_per_s(t) eligible auctions each second, each
// bid won half the time at kPrice; calls at_hour(h, spent) at every whole hour.
void simulate(Pacer& pacer, std::int64_t from, std::int64_t ms, const std::function<int(std::int64_t)>& auctions_per_s,
              const std::function<void(int, Micros)>& at_hour = {}) {
  Rng rng;
  for (std::int64_t t = from; t < from + ms; t += 1000) {
    if (at_hour && (t - from) % kHourMs == 0 && t != from) {
      at_hour(static_cast<int>((t - from) / kHourMs), pacer.spent_today());
    }
    int n = auctions_per_s(t);
    for (int i = 0; i < n; ++i) {
      std::int64_t now = t + i * 1000 / n;
      if (pacer.should_bid(now, rng.next()) && (rng.next() & 1) != 0) pacer.on_spend(now, kPrice);
    }
  }
}

TEST(Pacer, SpreadsTheBudgetOverTheDayUnderHeavyTraffic) {
  // 10 auctions a second could buy 432,000 impressions, 8.6 times the budget.
  Pacer pacer(kBudget, kDay0);
  Micros first_hour = -1;
  simulate(pacer, kDay0, Pacer::kDayMs, [](std::int64_t) { return 10; }, [&](int hour, Micros spent) {
    if (hour == 1) first_hour = spent;
    Micros planned = kBudget * hour / 24;
    EXPECT_NEAR(static_cast<double>(spent), static_cast<double>(planned), 0.05 * kBudget) << "hour " << hour;
  });
  EXPECT_LE(first_hour, kBudget / 24 * 3 / 2);  // unpaced, it would be gone in under 3 hours
  EXPECT_GE(pacer.spent_today(), kBudget * 97 / 100);
  EXPECT_LE(pacer.spent_today(), kBudget + kPrice);
  EXPECT_LT(pacer.rate(), Pacer::kFullRate / 4);
}

TEST(Pacer, FollowsTheCurveWhenTrafficSwingsThroughTheDay) {
  // From 2 auctions a second at night to 26 in the afternoon.
  auto diurnal = [](std::int64_t t) {
    double h = static_cast<double>(t % Pacer::kDayMs) / kHourMs;
    return static_cast<int>(14 - 12 * std::cos((h - 3) / 24 * 2 * M_PI));
  };
  Pacer pacer(kBudget, kDay0);
  simulate(pacer, kDay0, Pacer::kDayMs, diurnal, [&](int hour, Micros spent) {
    EXPECT_NEAR(static_cast<double>(spent), static_cast<double>(kBudget * hour / 24), 0.06 * kBudget) << "hour " << hour;
  });
  EXPECT_GE(pacer.spent_today(), kBudget * 95 / 100);
  EXPECT_LE(pacer.spent_today(), kBudget + kPrice);
}

TEST(Pacer, BidsOnEverythingWhenTrafficIsThin) {
  // 1 auction every 2 s buys at most 21,600 impressions, under half the budget.
  Pacer pacer(kBudget, kDay0);
  simulate(pacer, kDay0, Pacer::kDayMs, [](std::int64_t t) { return (t / 1000) % 2 == 0 ? 1 : 0; });
  EXPECT_EQ(pacer.rate(), Pacer::kFullRate);
  EXPECT_GT(pacer.spent_today(), 20'000 * kPrice);
}

TEST(Pacer, ASlotStopsAtTwiceItsShare) {
  Pacer pacer(kBudget, kDay0);
  Rng rng;
  int bids = 0;
  for (int i = 0; i < 100'000; ++i) {  // a burst inside the first minute, every bid won
    if (pacer.should_bid(kDay0 + 1000, rng.next())) {
      ++bids;
      pacer.on_spend(kDay0 + 1000, kPrice);
    }
  }
  Micros share = kBudget / 1440 + 1;
  EXPECT_GE(pacer.spent_today(), 2 * share);
  EXPECT_LE(pacer.spent_today(), 2 * share + kPrice);
  EXPECT_EQ(bids, pacer.spent_today() / kPrice);
}

TEST(Pacer, ANewDayStartsAfresh) {
  Pacer pacer(kBudget, kDay0);
  simulate(pacer, kDay0, Pacer::kDayMs, [](std::int64_t) { return 10; });
  Micros day1 = pacer.spent_today();
  EXPECT_GE(day1, kBudget * 97 / 100);
  EXPECT_EQ(pacer.planned_by(kDay0 + Pacer::kDayMs + 6 * kHourMs), kBudget / 4);
  simulate(pacer, kDay0 + Pacer::kDayMs, 6 * kHourMs, [](std::int64_t) { return 10; });
  EXPECT_NEAR(static_cast<double>(pacer.spent_today()), kBudget / 4.0, 0.05 * kBudget);
}

TEST(Pacer, NeverBidsPastTheBudget) {
  Pacer pacer(10 * kPrice, kDay0, Pacer::Options{.slot_ms = 60'000, .initial_rate = Pacer::kFullRate, .min_rate = 1'000});
  Rng rng;
  Micros spent = 0;
  for (std::int64_t t = kDay0; t < kDay0 + Pacer::kDayMs; t += 100) {
    if (pacer.should_bid(t, rng.next())) {
      pacer.on_spend(t, kPrice);
      spent += kPrice;
    }
  }
  EXPECT_EQ(spent, 10 * kPrice);
  EXPECT_FALSE(pacer.should_bid(kDay0 + Pacer::kDayMs - 1, 0));
  pacer.set_daily_budget(20 * kPrice);
  EXPECT_TRUE(pacer.should_bid(kDay0 + Pacer::kDayMs - 1, 0));
}

}  // namespace
}  // namespace mnv::rtb
