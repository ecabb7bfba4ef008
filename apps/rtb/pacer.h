// apps/rtb/pacer.h — spreads one campaign's daily budget over the day.
//
// Why: an unpaced campaign with a good bid wins everything it sees and spends its whole day in
// the first minutes. The pacer does what published pacing designs do (probabilistic throttling,
// e.g. Xu et al., "Smart Pacing", KDD 2015): the day is cut into slots (a minute by default);
// the campaign enters each auction it is eligible for with a probability, the rate, and at each
// slot boundary the rate is moved by the spend error — the rate times what the next slot should
// spend (the budget left over the slots left) divided by what the last slot did spend, at most
// halved or doubled per slot. On top, a slot that has already spent twice its share stops
// bidding until the next, so a burst cannot outrun the loop.
//
// Pure: the caller passes the time (milliseconds since the Unix epoch; days are UTC) and a
// uniform random number, so tests drive a whole day deterministically. One Pacer per campaign
// per shard (the shard's slice of the daily budget); not thread-safe. Money is micro-USD.
#pragma once

#include <cstdint>

#include "apps/rtb/money.h"

namespace mnv::rtb {

class Pacer {
 public:
  static constexpr std::int64_t kDayMs = 86'400'000;
  static constexpr std::uint32_t kFullRate = 1'000'000;  // rates are in parts per million

  struct Options {
    std::int64_t slot_ms = 60'000;        // must divide a day
    std::uint32_t initial_rate = kFullRate;
    std::uint32_t min_rate = 1'000;       // 0.1%: the loop can always see spend again
  };

  Pacer(Micros daily_budget, std::int64_t now_ms) : Pacer(daily_budget, now_ms, Options{}) {}
  Pacer(Micros daily_budget, std::int64_t now_ms, Options options);

  // Whether to enter an auction now; `random` is uniform over 32 bits.
  bool should_bid(std::int64_t now_ms, std::uint32_t random);
  // Records spend (a win or billing notice) at `now_ms`.
  void on_spend(std::int64_t now_ms, Micros amount);
  // A new daily budget (a reload), from now on.
  void set_daily_budget(Micros daily_budget);

  // The state, for metrics and the demo's curve.
  std::uint32_t rate() const { return rate_; }
  Micros spent_today() const { return spent_today_; }
  Micros daily_budget() const { return daily_budget_; }
  // What an even spread would have spent by `now_ms` today.
  Micros planned_by(std::int64_t now_ms) const;

 private:
  // Moves to the slot of `now_ms`, adjusting the rate at each boundary crossed.
  void advance(std::int64_t now_ms);
  // The share of the budget left for each slot from `slot` to the end of the day.
  Micros share_from(std::int64_t slot) const;

  Options options_;
  std::int64_t slots_per_day_;
  Micros daily_budget_;
  std::int64_t day_ = 0;   // days since the epoch
  std::int64_t slot_ = 0;  // slot of the day
  std::uint32_t rate_;
  Micros spent_today_ = 0;
  Micros spent_in_slot_ = 0;
  Micros slot_share_ = 0;  // what this slot should spend
};

}  // namespace mnv::rtb
