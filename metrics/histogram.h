// metrics/histogram.h — a registry's latency histogram: its fixed range of buckets, and what a
// reader gets back (one shard's, or all shards' merged).
//
// Values are nanoseconds. The buckets are LogLinear<7> (log_linear.h) from 1 µs to 10 s: a
// recorded value is known to within 1/64 (< 1.6%) of itself, in 1,486 buckets. A value below
// 1 µs counts in an underflow slot, one above the bucket holding 10 s in an overflow slot; both
// are counted (count(), sum and max include them), only their place is coarse. A shard's cells
// for one histogram are its sum, its max and the kSlots counters: about 12 KiB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "metrics/log_linear.h"

namespace mnv::metrics {

struct HistogramRange {
  using Buckets = LogLinear<7>;
  static constexpr std::uint64_t kLowestNs = 1'000;             // 1 µs
  static constexpr std::uint64_t kHighestNs = 10'000'000'000;  // 10 s
  static constexpr std::size_t kFirst = Buckets::index_of(kLowestNs);
  static constexpr std::size_t kLast = Buckets::index_of(kHighestNs);
  static_assert(Buckets::lowest_in(kFirst) == kLowestNs, "the range starts on a bucket edge");
  // Slot 0: underflow; slots 1..kLast-kFirst+1: the buckets; the last slot: overflow.
  static constexpr std::size_t kSlots = kLast - kFirst + 3;
  static constexpr std::size_t kUnderflow = 0;
  static constexpr std::size_t kOverflow = kSlots - 1;
  static constexpr double kRelativeError = Buckets::kRelativeError;

  static std::size_t slot_of(std::uint64_t ns) {
    if (ns < kLowestNs) return kUnderflow;
    std::size_t i = Buckets::index_of(ns);
    return i > kLast ? kOverflow : i - kFirst + 1;
  }
  // The largest value a slot counts (UINT64_MAX for overflow).
  static std::uint64_t highest_in_slot(std::size_t slot) {
    if (slot == kUnderflow) return kLowestNs - 1;
    if (slot == kOverflow) return UINT64_MAX;
    return Buckets::highest_in(slot - 1 + kFirst);
  }
};

// What a reader saw of a histogram: counts per slot, the sum and the max of the values. Built by
// Registry::snapshot()/merged() (it allocates: readers are not on the hot path).
class HistogramSnapshot {
 public:
  HistogramSnapshot() : slots_(HistogramRange::kSlots, 0) {}

  // Adds `other`'s values, as if they had been recorded here (shards merge this way).
  void merge(const HistogramSnapshot& other);

  std::uint64_t count() const { return count_; }
  std::uint64_t sum_ns() const { return sum_ns_; }
  std::uint64_t max_ns() const { return max_ns_; }
  double mean_ns() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_ns_) / static_cast<double>(count_); }
  std::uint64_t underflow() const { return slots_[HistogramRange::kUnderflow]; }
  std::uint64_t overflow() const { return slots_[HistogramRange::kOverflow]; }

  // The value at or below which `percentile` percent (0..100) of the values lie: the highest
  // value of its bucket (never an underestimate, within 1.6% above the exact one in range),
  // capped at max_ns(). 0 when empty.
  std::uint64_t percentile(double percentile) const;

  // How many values lie in slots whose every value is <= ns: never counts a value above ns, and
  // misses only values in the one bucket that straddles ns (within 1.6% below it). The
  // Prometheus `le` buckets are these counts.
  std::uint64_t count_at_most(std::uint64_t ns) const;
  // count_at_most() of each of n ascending bounds, into counts[0, n), in one pass.
  void counts_at_most(const std::uint64_t* bounds, std::size_t n, std::uint64_t* counts) const;

  const std::vector<std::uint64_t>& slots() const { return slots_; }

 private:
  friend class Registry;
  std::vector<std::uint64_t> slots_;
  std::uint64_t count_ = 0;
  std::uint64_t sum_ns_ = 0;
  std::uint64_t max_ns_ = 0;
};

}  // namespace mnv::metrics
