// metrics/latency_histogram.h — one thread's private latency histogram over the whole uint64
// range (load generators, benchmarks: perf/).
//
// LogLinear<8> buckets: values below 256 exact, others within 1/128 (< 0.8%); 7,424 counters
// (58 KiB) in the object itself, so record() never allocates. Not for cells shared between
// threads or processes: a server's per-shard histograms are Registry::histogram() (registry.h),
// on the same bucket scheme over 1 µs .. 10 s.
#pragma once

#include <cstdint>
#include <cstring>

#include "metrics/log_linear.h"

namespace mnv::metrics {

class LatencyHistogram {
 public:
  using Buckets = LogLinear<8>;
  static constexpr std::size_t kBuckets = Buckets::kBuckets;

  LatencyHistogram() { reset(); }

  void reset() {
    std::memset(counts_, 0, sizeof counts_);
    total_ = 0;
    max_ = 0;
    min_ = UINT64_MAX;
    sum_ = 0;
  }

  void record(std::uint64_t v) {
    ++counts_[Buckets::index_of(v)];
    ++total_;
    sum_ += v;
    if (v > max_) max_ = v;
    if (v < min_) min_ = v;
  }

  // Adds everything `other` recorded, as if it had been recorded here.
  void merge(const LatencyHistogram& other) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    sum_ += other.sum_;
    if (other.max_ > max_) max_ = other.max_;
    if (other.min_ < min_) min_ = other.min_;
  }

  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return max_; }
  std::uint64_t min() const { return total_ == 0 ? 0 : min_; }
  double mean() const { return total_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(total_); }

  // The value at or below which `percentile` percent (0..100) of the recorded values lie, given
  // as the highest value its bucket can hold (never an underestimate), capped at max(). 0 when
  // empty.
  std::uint64_t percentile(double percentile) const {
    if (total_ == 0) return 0;
    std::uint64_t hi = Buckets::highest_in(bucket_at_rank(counts_, kBuckets, rank_at(percentile, total_)));
    return hi < max_ ? hi : max_;
  }

  static std::size_t index_of(std::uint64_t v) { return Buckets::index_of(v); }
  static std::uint64_t lowest_in(std::size_t i) { return Buckets::lowest_in(i); }
  static std::uint64_t highest_in(std::size_t i) { return Buckets::highest_in(i); }

 private:
  std::uint64_t counts_[kBuckets];
  std::uint64_t total_;
  std::uint64_t max_;
  std::uint64_t min_;
  std::uint64_t sum_;
};

}  // namespace mnv::metrics
