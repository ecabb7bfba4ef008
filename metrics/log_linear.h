// metrics/log_linear.h — the log-linear bucket layout of every latency histogram here
// (HdrHistogram's), and the rank a percentile asks for.
//
// Values below 2^SubBits are a bucket each (exact). Above, each power-of-two range [2^e, 2^(e+1))
// is split into 2^(SubBits-1) equal sub-buckets, so a bucket is never wider than 1/2^(SubBits-1)
// of its lowest value: reporting a bucket's highest value overstates any value in it by less
// than kRelativeError. The whole uint64 range is kBuckets buckets; index_of() is a count of
// leading zeros, a shift and an add. Written here rather than depending on HdrHistogram_c (not in
// Debian bookworm as a library) because the needed part is this small.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace mnv::metrics {

template <int SubBits>
struct LogLinear {
  static_assert(SubBits >= 2 && SubBits <= 16, "LogLinear: SubBits in [2, 16]");
  static constexpr std::uint64_t kSubCount = std::uint64_t{1} << SubBits;
  static constexpr std::uint64_t kHalf = kSubCount / 2;  // sub-buckets per power of two
  // Buckets [0, kSubCount) are exact; then kHalf buckets per exponent e in [SubBits, 63].
  static constexpr std::size_t kBuckets = kSubCount + (64 - SubBits) * kHalf;
  // (highest_in(i) - v) / v < kRelativeError for every v in bucket i.
  static constexpr double kRelativeError = 1.0 / static_cast<double>(kHalf);

  static constexpr std::size_t index_of(std::uint64_t v) {
    if (v < kSubCount) return static_cast<std::size_t>(v);
    int e = 63 - std::countl_zero(v);          // e >= SubBits
    int shift = e - (SubBits - 1);             // keeps SubBits significant bits: the top one is set
    std::uint64_t sub = (v >> shift) - kHalf;  // [0, kHalf)
    return static_cast<std::size_t>(kSubCount + static_cast<std::uint64_t>(e - SubBits) * kHalf + sub);
  }

  // The smallest and largest values counted in bucket i.
  static constexpr std::uint64_t lowest_in(std::size_t i) {
    if (i < kSubCount) return i;
    std::uint64_t k = i - kSubCount;
    int e = static_cast<int>(k / kHalf) + SubBits;
    return (kHalf + k % kHalf) << (e - (SubBits - 1));
  }
  static constexpr std::uint64_t highest_in(std::size_t i) {
    if (i < kSubCount) return i;
    std::uint64_t k = i - kSubCount;
    int e = static_cast<int>(k / kHalf) + SubBits;
    return lowest_in(i) + ((std::uint64_t{1} << (e - (SubBits - 1))) - 1);
  }
};

// The 1-based rank of the value at `percentile` (0..100) among `total` sorted values:
// ceil(percentile/100 * total), clamped to [1, total]; a rounding error in the product does not
// push the rank up (p99.9 of 1,000 values is the 999th). total must be > 0.
inline std::uint64_t rank_at(double percentile, std::uint64_t total) {
  double want = percentile * static_cast<double>(total) / 100.0;
  want -= want * 1e-12;
  std::uint64_t rank = want <= 0 ? 0 : static_cast<std::uint64_t>(want);
  if (static_cast<double>(rank) < want) ++rank;  // ceil
  if (rank == 0) rank = 1;
  if (rank > total) rank = total;
  return rank;
}

// The index of the bucket holding the value of 1-based `rank` in counts[0, n): the first whose
// running sum reaches it; n - 1 if the counts hold fewer values.
inline std::size_t bucket_at_rank(const std::uint64_t* counts, std::size_t n, std::uint64_t rank) {
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < n; ++i) {
    seen += counts[i];
    if (seen >= rank) return i;
  }
  return n - 1;
}

}  // namespace mnv::metrics
