// metrics/histogram_test.cc — a registry histogram's accuracy: percentiles from the merged
// shards against the exact percentiles of the recorded samples (seeded random distributions of
// several shapes), the cumulative counts the exposition uses, and the clamped ends.
#include "metrics/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "metrics/registry.h"
#include "metrics/test_cells.h"

namespace mnv::metrics {
namespace {

constexpr int kShards = 4;
constexpr double kError = HistogramRange::kRelativeError;  // 1/64

TEST(HistogramRangeTest, CoversOneMicrosecondToTenSecondsWithinTheBound) {
  EXPECT_LE(kError, 0.03);
  EXPECT_EQ(HistogramRange::slot_of(999), HistogramRange::kUnderflow);
  EXPECT_EQ(HistogramRange::slot_of(1000), 1u);
  EXPECT_NE(HistogramRange::slot_of(10'000'000'000), HistogramRange::kOverflow);
  EXPECT_EQ(HistogramRange::slot_of(UINT64_MAX), HistogramRange::kOverflow);
  EXPECT_EQ(HistogramRange::slot_of(HistogramRange::highest_in_slot(HistogramRange::kOverflow - 1) + 1),
            HistogramRange::kOverflow);
  for (std::size_t s = 0; s + 1 < HistogramRange::kSlots; ++s) {
    ASSERT_EQ(HistogramRange::slot_of(HistogramRange::highest_in_slot(s)), s);
    ASSERT_EQ(HistogramRange::slot_of(HistogramRange::highest_in_slot(s) + 1), s + 1);
  }
}

struct Shape {
  const char* name;
  std::function<double(std::mt19937_64&)> draw_ns;
};

std::vector<Shape> shapes() {
  return {
      {"log-uniform 1us..10s",
       [](std::mt19937_64& g) { return std::exp(std::uniform_real_distribution<double>(std::log(1e3), std::log(1e10))(g)); }},
      {"lognormal median 200us", [](std::mt19937_64& g) { return std::lognormal_distribution<double>(std::log(2e5), 1.0)(g); }},
      {"exponential mean 1ms", [](std::mt19937_64& g) { return 1e3 + std::exponential_distribution<double>(1.0 / 1e6)(g); }},
      {"bimodal 50us / 20ms",
       [](std::mt19937_64& g) {
         bool slow = std::uniform_real_distribution<double>(0, 1)(g) < 0.1;
         return std::max(1e3, std::normal_distribution<double>(slow ? 2e7 : 5e4, slow ? 3e6 : 5e3)(g));
       }},
      {"pareto from 10us, alpha 1.5",
       [](std::mt19937_64& g) {
         double u = std::uniform_real_distribution<double>(0, 1)(g);
         return std::min(1e10, 1e4 / std::pow(1 - u, 1 / 1.5));
       }},
      {"narrow: 100us +- 1%",
       [](std::mt19937_64& g) { return std::uniform_real_distribution<double>(0.99e5, 1.01e5)(g); }},
  };
}

class HistogramAccuracyTest : public ::testing::TestWithParam<int> {};

TEST_P(HistogramAccuracyTest, PercentilesWithinTheBoundOfExactOnes) {
  const Shape shape = shapes()[static_cast<std::size_t>(GetParam())];
  SCOPED_TRACE(shape.name);
  Registry reg(kShards);
  Histogram h = reg.histogram("latency_seconds", "Latency.");
  TestCells cells(reg);
  std::mt19937_64 gen(20261204 + static_cast<unsigned>(GetParam()));
  std::vector<std::uint64_t> samples;
  std::uint64_t sum = 0;
  for (int i = 0; i < 200000; ++i) {
    auto ns = static_cast<std::uint64_t>(shape.draw_ns(gen));
    samples.push_back(ns);
    sum += ns;
    reg.shard(i % kShards).record(h, ns);
  }
  std::sort(samples.begin(), samples.end());
  HistogramSnapshot m = reg.merged(h);
  ASSERT_EQ(m.count(), samples.size());
  EXPECT_EQ(m.sum_ns(), sum);
  EXPECT_EQ(m.max_ns(), samples.back());
  EXPECT_EQ(m.underflow(), 0u);
  EXPECT_EQ(m.overflow(), 0u);
  for (double p : {0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0}) {
    std::uint64_t exact = samples[rank_at(p, samples.size()) - 1];
    std::uint64_t got = m.percentile(p);
    EXPECT_GE(got, exact) << "p" << p;  // never an underestimate
    EXPECT_LE(static_cast<double>(got), static_cast<double>(exact) * (1 + kError)) << "p" << p;
  }
  // The exposition's cumulative counts: never a value above the bound, and every value lower
  // than the bound by more than the relative error.
  for (std::uint64_t bound = 1000; bound <= 10'000'000'000; bound = bound * 5 / 2 + 1) {
    auto at_most = [&](double x) {
      return static_cast<std::uint64_t>(std::upper_bound(samples.begin(), samples.end(), static_cast<std::uint64_t>(x)) -
                                        samples.begin());
    };
    std::uint64_t got = m.count_at_most(bound);
    EXPECT_LE(got, at_most(static_cast<double>(bound))) << bound;
    EXPECT_GE(got, at_most(static_cast<double>(bound) / (1 + kError))) << bound;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, HistogramAccuracyTest, ::testing::Range(0, static_cast<int>(shapes().size())));

TEST(HistogramTest, ShardsAreSeparateAndMergeToTheirSum) {
  Registry reg(2);
  Histogram h = reg.histogram("latency_seconds", "Latency.");
  TestCells cells(reg);
  for (int i = 0; i < 10; ++i) reg.shard(0).record(h, 5000);
  for (int i = 0; i < 30; ++i) reg.shard(1).record(h, 3'000'000);
  HistogramSnapshot s0 = reg.snapshot(h, 0), s1 = reg.snapshot(h, 1), m = reg.merged(h);
  EXPECT_EQ(s0.count(), 10u);
  EXPECT_EQ(s0.max_ns(), 5000u);
  EXPECT_EQ(s1.count(), 30u);
  EXPECT_EQ(s1.sum_ns(), 90'000'000u);
  EXPECT_EQ(m.count(), 40u);
  EXPECT_EQ(m.max_ns(), 3'000'000u);
  EXPECT_EQ(m.sum_ns(), 90'050'000u);
  EXPECT_EQ(m.percentile(25), HistogramRange::highest_in_slot(HistogramRange::slot_of(5000)));
  EXPECT_EQ(m.percentile(26), 3'000'000u);  // capped at max: no bucket edge above the value
  s0.merge(s1);
  EXPECT_EQ(s0.slots(), m.slots());
}

TEST(HistogramTest, ValuesOutsideTheRangeAreCountedAtTheEnds) {
  Registry reg(1);
  Histogram h = reg.histogram("latency_seconds", "Latency.");
  TestCells cells(reg);
  ShardCells c = reg.shard(0);
  c.record(h, 0);
  c.record(h, 999);
  c.record(h, 50'000);
  c.record(h, 20'000'000'000);  // 20 s
  c.record(h, 30'000'000'000);
  HistogramSnapshot s = reg.snapshot(h, 0);
  EXPECT_EQ(s.count(), 5u);
  EXPECT_EQ(s.underflow(), 2u);
  EXPECT_EQ(s.overflow(), 2u);
  EXPECT_EQ(s.sum_ns(), 50'000'050'999u);
  EXPECT_EQ(s.percentile(20), 999u);               // under 1 us: reported as its ceiling
  EXPECT_EQ(s.percentile(100), 30'000'000'000u);   // over 10 s: the max
  EXPECT_EQ(s.percentile(80), 30'000'000'000u);
  EXPECT_EQ(s.count_at_most(1000), 2u);
  EXPECT_EQ(s.count_at_most(10'000'000'000), 3u);
}

TEST(HistogramTest, EmptyReadsZero) {
  HistogramSnapshot s;
  EXPECT_EQ(s.count(), 0u);
  EXPECT_EQ(s.percentile(50), 0u);
  EXPECT_EQ(s.mean_ns(), 0.0);
  EXPECT_EQ(s.count_at_most(UINT64_MAX), 0u);
}

}  // namespace
}  // namespace mnv::metrics
