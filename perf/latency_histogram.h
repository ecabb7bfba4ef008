// perf/latency_histogram.h — a fixed-memory, log-linear latency histogram (HdrHistogram-like).
//
// Values (nanoseconds, or any non-negative integer) below 2^kSubBits are counted exactly; above,
// each power-of-two range [2^e, 2^(e+1)) is split into 2^(kSubBits-1) equal sub-buckets, so a
// recorded value is known to within 1/2^(kSubBits-1) of itself (kSubBits = 8: < 0.8%). The whole
// uint64 range fits in a fixed array of 7,424 counters (58 KiB); record() is a few instructions and
// never allocates. Written here rather than depending on HdrHistogram_c (not in Debian bookworm
// as a library) because the needed part is this small.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace mnv::perf {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 8;
  static constexpr std::uint64_t kSubCount = std::uint64_t{1} << kSubBits;  // 256
  static constexpr std::uint64_t kHalf = kSubCount / 2;
  // Buckets [0, kSubCount) are exact; then kHalf buckets per exponent e in [kSubBits, 63].
  static constexpr std::size_t kBuckets = kSubCount + (64 - kSubBits) * kHalf;

  LatencyHistogram() { reset(); }

  void reset() {
    std::memset(counts_, 0, sizeof counts_);
    total_ = 0;
    max_ = 0;
    min_ = UINT64_MAX;
    sum_ = 0;
  }

  void record(std::uint64_t v) {
    ++counts_[index_of(v)];
    ++total_;
    sum_ += v;
    if (v > max_) max_ = v;
    if (v < min_) min_ = v;
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
    double want = percentile / 100.0 * static_cast<double>(total_);
    std::uint64_t rank = static_cast<std::uint64_t>(want);
    if (static_cast<double>(rank) < want) ++rank;  // ceil
    if (rank == 0) rank = 1;
    if (rank > total_) rank = total_;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        std::uint64_t hi = highest_in(i);
        return hi < max_ ? hi : max_;
      }
    }
    return max_;
  }

  static std::size_t index_of(std::uint64_t v) {
    if (v < kSubCount) return static_cast<std::size_t>(v);
    int e = 63 - std::countl_zero(v);  // e >= kSubBits
    int shift = e - (kSubBits - 1);    // keeps kSubBits significant bits: top one is set
    std::uint64_t sub = (v >> shift) - kHalf;  // [0, kHalf)
    return static_cast<std::size_t>(kSubCount + static_cast<std::uint64_t>(e - kSubBits) * kHalf + sub);
  }

  // The smallest and largest values counted in bucket i.
  static std::uint64_t lowest_in(std::size_t i) {
    if (i < kSubCount) return i;
    std::uint64_t k = i - kSubCount;
    int e = static_cast<int>(k / kHalf) + kSubBits;
    std::uint64_t sub = k % kHalf;
    int shift = e - (kSubBits - 1);
    return (kHalf + sub) << shift;
  }
  static std::uint64_t highest_in(std::size_t i) {
    if (i < kSubCount) return i;
    std::uint64_t k = i - kSubCount;
    int e = static_cast<int>(k / kHalf) + kSubBits;
    int shift = e - (kSubBits - 1);
    return lowest_in(i) + ((std::uint64_t{1} << shift) - 1);
  }

 private:
  std::uint64_t counts_[kBuckets];
  std::uint64_t total_;
  std::uint64_t max_;
  std::uint64_t min_;
  std::uint64_t sum_;
};

}  // namespace mnv::perf
