// tests/metrics_alloc_test.cc — the metrics hot path allocates nothing: 100,000 counter adds,
// gauge writes and histogram records on every shard make zero global allocations. (Here rather
// than beside metrics/, which sits below runtime/ and so may not link its allocation counter.)
#include <gtest/gtest.h>

#include <cstdint>

#include "metrics/registry.h"
#include "metrics/test_cells.h"
#include "runtime/global_alloc_counter.h"

namespace mnv::metrics {
namespace {

TEST(MetricsAllocTest, HotPathMakesNoGlobalAllocations) {
  constexpr int kShards = 4;
  Registry reg(kShards);
  Counter requests = reg.counter("requests", "Requests.", {{"method", "GET"}});
  Gauge open = reg.gauge("open", "Open connections.");
  Histogram latency = reg.histogram("latency_seconds", "Latency.");
  TestCells cells(reg);
  ShardCells shard[kShards];
  for (int s = 0; s < kShards; ++s) shard[s] = reg.shard(s);

  long before = global_allocations();
  for (std::uint64_t i = 0; i < 100000; ++i) {
    ShardCells c = shard[i % kShards];
    c.add(requests);
    c.add(open, 1);
    c.set(open, static_cast<std::int64_t>(i));
    c.record(latency, 500 + i * 7919 % 20'000'000'000);  // underflow .. overflow
  }
  long after = global_allocations();
  EXPECT_EQ(after - before, 0) << "global allocations on the metrics hot path";
  // The counter does see allocations in this binary (a reader's snapshot makes some).
  long reading = global_allocations();
  EXPECT_EQ(reg.merged(latency).count(), 100000u);
  EXPECT_GT(global_allocations() - reading, 0);
  EXPECT_EQ(reg.total(requests), 100000u);
}

}  // namespace
}  // namespace mnv::metrics
