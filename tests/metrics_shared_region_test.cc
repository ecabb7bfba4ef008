// tests/metrics_shared_region_test.cc — a registry's cells in the shards' shared region
// (shard/shared_memory.h), written by shard processes forked after it was placed: one scrape in
// the parent sees every shard's counts, exactly.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "metrics/prometheus.h"
#include "metrics/registry.h"
#include "shard/shared_memory.h"

namespace mnv::metrics {
namespace {

TEST(MetricsSharedRegionTest, OneScrapeSeesEveryShardProcess) {
  constexpr int kShards = 3;
  Registry reg(kShards);
  Counter served = reg.counter("served", "Requests served.", {{"status", "2xx"}});
  Gauge open = reg.gauge("open", "Connections open.");
  Histogram latency = reg.histogram("latency_seconds", "Latency.");
  std::size_t bytes = reg.bytes_needed();
  SharedRegion region(SharedRegion::grow(0, bytes, Registry::kAlign));
  reg.place(region.take(bytes, Registry::kAlign), bytes);

  pid_t pids[kShards];
  for (int s = 0; s < kShards; ++s) {
    pids[s] = fork();
    ASSERT_GE(pids[s], 0);
    if (pids[s] == 0) {  // shard s, a process of its own
      ShardCells c = reg.shard(s);
      for (int i = 0; i < 1000 * (s + 1); ++i) {
        c.add(served);
        c.record(latency, 3'000'000);  // 3 ms
      }
      c.set(open, s + 10);
      _exit(0);
    }
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }

  EXPECT_EQ(reg.total(served), 6000u);
  EXPECT_EQ(reg.total(open), 33);
  EXPECT_EQ(reg.merged(latency).count(), 6000u);
  std::string text;
  append_prometheus(reg, &text);
  for (int s = 0; s < kShards; ++s) {
    std::string sh = std::to_string(s), n = std::to_string(1000 * (s + 1));
    EXPECT_NE(text.find("served_total{status=\"2xx\",shard=\"" + sh + "\"} " + n + "\n"), std::string::npos) << text;
    EXPECT_NE(text.find("open{shard=\"" + sh + "\"} " + std::to_string(s + 10) + "\n"), std::string::npos);
    EXPECT_NE(text.find("latency_seconds_bucket{shard=\"" + sh + "\",le=\"0.002\"} 0\n"), std::string::npos);
    EXPECT_NE(text.find("latency_seconds_bucket{shard=\"" + sh + "\",le=\"0.005\"} " + n + "\n"), std::string::npos);
    EXPECT_NE(text.find("latency_seconds_count{shard=\"" + sh + "\"} " + n + "\n"), std::string::npos);
  }
}

}  // namespace
}  // namespace mnv::metrics
