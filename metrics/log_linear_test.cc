// metrics/log_linear_test.cc — the bucket layout: contiguous buckets covering every value, each
// no wider than its stated relative error; the percentile rank.
#include "metrics/log_linear.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace mnv::metrics {
namespace {

template <typename B>
void expect_contiguous_and_narrow() {
  EXPECT_EQ(B::lowest_in(0), 0u);
  EXPECT_EQ(B::highest_in(B::kBuckets - 1), UINT64_MAX);
  for (std::size_t i = 0; i + 1 < B::kBuckets; ++i) {
    ASSERT_EQ(B::highest_in(i) + 1, B::lowest_in(i + 1)) << i;
    ASSERT_EQ(B::index_of(B::lowest_in(i)), i);
    ASSERT_EQ(B::index_of(B::highest_in(i)), i);
    // A bucket's width, relative to its lowest value, is within the stated error:
    // width < lo / kHalf, i.e. width / lo < kRelativeError (in integers: no rounding).
    std::uint64_t lo = B::lowest_in(i);
    std::uint64_t width = B::highest_in(i) - lo;
    if (lo >= B::kSubCount) {
      ASSERT_LT(width, lo / B::kHalf) << i;
    } else {
      ASSERT_EQ(width, 0u) << i;
    }
  }
}

TEST(LogLinearTest, BucketsAreContiguousAndNarrow7) { expect_contiguous_and_narrow<LogLinear<7>>(); }
TEST(LogLinearTest, BucketsAreContiguousAndNarrow8) { expect_contiguous_and_narrow<LogLinear<8>>(); }

TEST(LogLinearTest, SmallValuesAreExact) {
  for (std::uint64_t v = 0; v < 128; ++v) {
    EXPECT_EQ(LogLinear<7>::lowest_in(LogLinear<7>::index_of(v)), v);
    EXPECT_EQ(LogLinear<7>::highest_in(LogLinear<7>::index_of(v)), v);
  }
}

TEST(LogLinearTest, RankIsTheCeilingClamped) {
  EXPECT_EQ(rank_at(50, 100), 50u);
  EXPECT_EQ(rank_at(50, 101), 51u);   // ceil(50.5)
  EXPECT_EQ(rank_at(0, 100), 1u);     // at least the first value
  EXPECT_EQ(rank_at(100, 100), 100u);
  EXPECT_EQ(rank_at(150, 100), 100u); // at most the last
  EXPECT_EQ(rank_at(99.9, 1000), 999u);
}

TEST(LogLinearTest, BucketAtRankIsTheFirstToReachIt) {
  const std::uint64_t counts[] = {0, 2, 0, 3, 1};
  EXPECT_EQ(bucket_at_rank(counts, 5, 1), 1u);
  EXPECT_EQ(bucket_at_rank(counts, 5, 2), 1u);
  EXPECT_EQ(bucket_at_rank(counts, 5, 3), 3u);
  EXPECT_EQ(bucket_at_rank(counts, 5, 6), 4u);
  EXPECT_EQ(bucket_at_rank(counts, 5, 7), 4u);  // more than recorded: the last bucket
}

}  // namespace
}  // namespace mnv::metrics
