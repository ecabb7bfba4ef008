// metrics/concurrency_test.cc — shard threads writing their own cells while another thread reads
// and scrapes: totals only grow, a histogram's count equals its +Inf bucket in every scrape, and
// the final values are exact. Run under --config=tsan (tools/mnv test) for data races.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "metrics/prometheus.h"
#include "metrics/registry.h"
#include "metrics/test_cells.h"

namespace mnv::metrics {
namespace {

constexpr int kShards = 4;
constexpr std::uint64_t kPerShard = 200000;

TEST(ConcurrencyTest, WritersAndAConcurrentReader) {
  Registry reg(kShards);
  Counter requests = reg.counter("requests", "Requests.");
  Gauge inflight = reg.gauge("inflight", "In flight.");
  Histogram latency = reg.histogram("latency_seconds", "Latency.");
  TestCells cells(reg);

  std::atomic<int> running{kShards};
  std::vector<std::thread> writers;
  for (int s = 0; s < kShards; ++s) {
    writers.emplace_back([&, s] {
      ShardCells c = reg.shard(s);
      for (std::uint64_t i = 0; i < kPerShard; ++i) {
        c.add(requests);
        c.add(inflight, 1);
        c.record(latency, 1000 + (i % 5000) * 100);
        c.add(inflight, -1);
      }
      running.fetch_sub(1, std::memory_order_release);
    });
  }

  std::uint64_t last_total = 0;
  std::uint64_t last_count = 0;
  int scrapes = 0;
  std::string text;
  do {
    std::uint64_t total = reg.total(requests);
    EXPECT_GE(total, last_total);
    last_total = total;
    HistogramSnapshot m = reg.merged(latency);
    EXPECT_GE(m.count(), last_count);
    last_count = m.count();
    std::int64_t in = reg.total(inflight);
    EXPECT_GE(in, 0);
    EXPECT_LE(in, kShards);
    text.clear();
    append_prometheus(reg, &text);
    ++scrapes;
  } while (running.load(std::memory_order_acquire) > 0);
  for (std::thread& t : writers) t.join();

  EXPECT_GT(scrapes, 0);
  EXPECT_EQ(reg.total(requests), kShards * kPerShard);
  EXPECT_EQ(reg.total(inflight), 0);
  HistogramSnapshot m = reg.merged(latency);
  EXPECT_EQ(m.count(), kShards * kPerShard);
  EXPECT_EQ(m.max_ns(), 1000u + 4999u * 100u);
  for (int s = 0; s < kShards; ++s) EXPECT_EQ(reg.value(requests, s), kPerShard);
}

}  // namespace
}  // namespace mnv::metrics
