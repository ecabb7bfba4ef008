// metrics/latency_histogram_test.cc — the private, whole-range histogram perf/ measures with:
// exact small values, percentiles within its precision, every bucket holding what index_of puts
// there, and merging.
#include "metrics/latency_histogram.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace mnv::metrics {
namespace {

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 100; ++v) h.record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.percentile(50), 50u);
  EXPECT_EQ(h.percentile(99), 99u);
  EXPECT_EQ(h.percentile(100), 100u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100u);
}

TEST(LatencyHistogramTest, LargeValuesWithinPrecision) {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 1000000; ++v) h.record(v * 1000);  // 1 us .. 1 s, in ns
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    double exact = p / 100.0 * 1e9;
    double got = static_cast<double>(h.percentile(p));
    EXPECT_GE(got, exact * (1 - 1e-6)) << p;         // never an underestimate
    EXPECT_LE(got, exact * (1 + 1.0 / 128)) << p;    // within one sub-bucket
  }
  EXPECT_EQ(h.percentile(100), 1000000000u);
  // Every bucket holds what index_of puts there, across the whole range.
  for (int e = 0; e < 64; ++e) {
    for (std::uint64_t v : {std::uint64_t{1} << e, (std::uint64_t{1} << e) + 1, (std::uint64_t{1} << e) * 3 / 2,
                            e == 63 ? UINT64_MAX : (std::uint64_t{1} << (e + 1)) - 1}) {
      std::size_t i = LatencyHistogram::index_of(v);
      ASSERT_LT(i, LatencyHistogram::kBuckets);
      EXPECT_LE(LatencyHistogram::lowest_in(i), v);
      EXPECT_GE(LatencyHistogram::highest_in(i), v);
    }
  }
}

TEST(LatencyHistogramTest, EmptyReadsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.percentile(99), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverythingInOne) {
  LatencyHistogram a, b, all;
  for (std::uint64_t v = 1; v <= 5000; ++v) {
    std::uint64_t x = v * v * 37 % 1000003;
    (v % 3 == 0 ? a : b).record(x);
    all.record(x);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.mean(), all.mean());
  for (double p : {0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 100.0}) EXPECT_EQ(a.percentile(p), all.percentile(p)) << p;
}

}  // namespace
}  // namespace mnv::metrics
