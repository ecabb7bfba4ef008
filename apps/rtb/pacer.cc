// apps/rtb/pacer.cc — the throttling loop (see pacer.h).
#include "apps/rtb/pacer.h"

#include <algorithm>
#include <cassert>

namespace mnv::rtb {

Pacer::Pacer(Micros daily_budget, std::int64_t now_ms, Options options)
    : options_(options),
      slots_per_day_(kDayMs / options.slot_ms),
      daily_budget_(daily_budget),
      rate_(std::clamp(options.initial_rate, options.min_rate, kFullRate)) {
  assert(options.slot_ms > 0 && kDayMs % options.slot_ms == 0);
  assert(daily_budget >= 0 && now_ms >= 0);
  day_ = now_ms / kDayMs;
  slot_ = (now_ms % kDayMs) / options_.slot_ms;
  slot_share_ = share_from(slot_);
}

Micros Pacer::share_from(std::int64_t slot) const {
  Micros left = daily_budget_ - spent_today_;
  if (left <= 0) return 0;
  return left / (slots_per_day_ - slot) + 1;
}

void Pacer::advance(std::int64_t now_ms) {
  std::int64_t day = now_ms / kDayMs;
  std::int64_t slot = (now_ms % kDayMs) / options_.slot_ms;
  if (day < day_ || (day == day_ && slot <= slot_)) return;  // same slot (or a clock step back)
  // The error of the slot that ended: what it should have spent against what it did.
  Micros last_spent = spent_in_slot_;
  bool skipped = day != day_ || slot != slot_ + 1;  // idle slots in between: no measure of them
  if (day != day_) {
    day_ = day;
    spent_today_ = 0;
  }
  slot_ = slot;
  spent_in_slot_ = 0;
  slot_share_ = share_from(slot_);
  if (skipped) return;
  std::uint64_t r = rate_;
  if (last_spent <= 0) {
    r *= 2;
  } else {
    // rate * (next slot's share / last slot's spend), within [rate / 2, rate * 2].
    unsigned __int128 scaled = static_cast<unsigned __int128>(r) * static_cast<std::uint64_t>(slot_share_) /
                               static_cast<std::uint64_t>(last_spent);
    r = static_cast<std::uint64_t>(std::min<unsigned __int128>(scaled, static_cast<unsigned __int128>(r) * 2));
    r = std::max<std::uint64_t>(r, rate_ / 2);
  }
  rate_ = static_cast<std::uint32_t>(std::clamp<std::uint64_t>(r, options_.min_rate, kFullRate));
}

bool Pacer::should_bid(std::int64_t now_ms, std::uint32_t random) {
  advance(now_ms);
  if (spent_today_ >= daily_budget_) return false;
  if (spent_in_slot_ >= 2 * slot_share_) return false;  // this slot had twice its share
  // random / 2^32 < rate / 1e6
  return (static_cast<std::uint64_t>(random) * kFullRate >> 32) < rate_;
}

void Pacer::on_spend(std::int64_t now_ms, Micros amount) {
  assert(amount >= 0);
  advance(now_ms);
  spent_today_ += amount;
  spent_in_slot_ += amount;
}

void Pacer::set_daily_budget(Micros daily_budget) {
  assert(daily_budget >= 0);
  daily_budget_ = daily_budget;
  slot_share_ = share_from(slot_);
}

Micros Pacer::planned_by(std::int64_t now_ms) const {
  std::int64_t into_day = now_ms % kDayMs;
  return static_cast<Micros>(static_cast<__int128>(daily_budget_) * into_day / kDayMs);
}

}  // namespace mnv::rtb
