// metrics/registry_test.cc — registration (families, labels, the errors a bad name or label
// gets), per-shard cells on their own cache lines, sums over shards, and cells in a shared
// mapping written by a forked process and read by its parent.
#include "metrics/registry.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>

#include "metrics/test_cells.h"

namespace mnv::metrics {
namespace {

TEST(RegistryTest, CountersAndGaugesSumOverShards) {
  Registry reg(3);
  Counter accepted = reg.counter("conn_accepted", "Connections accepted.");
  Gauge open = reg.gauge("conn_open", "Connections open.");
  TestCells cells(reg);
  reg.shard(0).add(accepted);
  reg.shard(1).add(accepted, 5);
  reg.shard(2).add(accepted, 2);
  reg.shard(0).set(open, 4);
  reg.shard(1).add(open, 3);
  reg.shard(1).add(open, -5);
  EXPECT_EQ(reg.value(accepted, 0), 1u);
  EXPECT_EQ(reg.value(accepted, 1), 5u);
  EXPECT_EQ(reg.total(accepted), 8u);
  EXPECT_EQ(reg.value(open, 1), -2);
  EXPECT_EQ(reg.total(open), 2);
  EXPECT_EQ(reg.total(open), reg.value(open, 0) + reg.value(open, 1) + reg.value(open, 2));
}

TEST(RegistryTest, SeriesOfOneFamilyShareItsNameAndLabels) {
  Registry reg(1);
  Counter peer = reg.counter("conn_closed", "Closed, by reason.", {{"reason", "peer"}});
  Counter timeout = reg.counter("conn_closed", "Closed, by reason.", {{"reason", "timeout"}});
  reg.gauge("pages", "Pages in use.");
  TestCells cells(reg);
  reg.shard(0).add(peer, 2);
  reg.shard(0).add(timeout, 7);
  EXPECT_EQ(reg.total(peer), 2u);
  EXPECT_EQ(reg.total(timeout), 7u);
  ASSERT_EQ(reg.families().size(), 2u);
  const Registry::Family& f = reg.families()[0];
  EXPECT_EQ(f.name, "conn_closed_total");
  EXPECT_EQ(f.kind, Kind::kCounter);
  ASSERT_EQ(f.label_names, std::vector<std::string>{"reason"});
  ASSERT_EQ(f.series.size(), 2u);
  EXPECT_EQ(f.series[1].label_values, std::vector<std::string>{"timeout"});
  EXPECT_EQ(reg.families()[1].name, "pages");
}

TEST(RegistryTest, EachShardsCellsStartOnTheirOwnCacheLine) {
  Registry reg(4);
  Counter c = reg.counter("one", "One cell per shard.");
  reg.counter("two", "Another.");
  ASSERT_EQ(reg.bytes_needed(), 4 * Registry::kAlign);  // two cells, padded to a line per shard
  alignas(64) std::uint64_t memory[4 * Registry::kAlign / sizeof(std::uint64_t)];
  reg.place(memory, sizeof memory);
  for (int i = 0; i < 4; ++i) reg.shard(i).add(c, static_cast<std::uint64_t>(i + 1));
  // Shard i's first cell is i cache lines past shard 0's.
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(memory[static_cast<std::size_t>(i) * Registry::kAlign / sizeof(std::uint64_t)], static_cast<std::uint64_t>(i + 1));
    EXPECT_EQ(reg.value(c, i), static_cast<std::uint64_t>(i + 1));
  }
}

TEST(RegistryTest, ResetGaugesClearsOneShardsGaugesOnly) {
  Registry reg(2);
  Counter c = reg.counter("c", "C.");
  Gauge g = reg.gauge("g", "G.");
  TestCells cells(reg);
  for (int s = 0; s < 2; ++s) {
    reg.shard(s).add(c, 5);
    reg.shard(s).set(g, 7);
  }
  reg.reset_gauges(1);
  EXPECT_EQ(reg.value(g, 0), 7);
  EXPECT_EQ(reg.value(g, 1), 0);
  EXPECT_EQ(reg.value(c, 1), 5u);
}

TEST(RegistryTest, BytesNeededGrowsWithShardsAndHistograms) {
  Registry one(1), eight(8);
  for (Registry* r : {&one, &eight}) {
    r->counter("requests", "Requests.");
    r->histogram("latency_seconds", "Latency.");
  }
  EXPECT_EQ(eight.bytes_needed(), 8 * one.bytes_needed());
  EXPECT_EQ(one.bytes_needed() % Registry::kAlign, 0u);
  EXPECT_GE(one.bytes_needed(), (1 + 2 + HistogramRange::kSlots) * sizeof(std::uint64_t));
}

TEST(RegistryTest, CellsInASharedMappingAreSeenAcrossAFork) {
  Registry reg(2);
  Counter served = reg.counter("served", "Requests served.");
  Histogram latency = reg.histogram("latency_seconds", "Latency.");
  std::size_t bytes = reg.bytes_needed();
  void* shared = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(shared, MAP_FAILED);
  reg.place(shared, bytes);
  reg.shard(0).add(served, 1);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // shard 1, as a process of its own
    for (int i = 0; i < 100; ++i) {
      reg.shard(1).add(served);
      reg.shard(1).record(latency, 2'000'000);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(reg.value(served, 0), 1u);
  EXPECT_EQ(reg.value(served, 1), 100u);
  EXPECT_EQ(reg.total(served), 101u);
  EXPECT_EQ(reg.merged(latency).count(), 100u);
  EXPECT_EQ(reg.merged(latency).max_ns(), 2'000'000u);
  munmap(shared, bytes);
}

using RegistryDeathTest = ::testing::Test;

TEST_F(RegistryDeathTest, BadNamesAndLabelsDieNamingTheRule) {
  EXPECT_DEATH({ Registry(1).counter("bad-name", "x"); }, "counter name \"bad-name\" is not a Prometheus metric name \\(bad character at 3\\)");
  EXPECT_DEATH({ Registry(1).counter("9lives", "x"); }, "bad character at 0");
  EXPECT_DEATH({ Registry(1).counter("requests_total", "x"); }, "register a counter without it");
  EXPECT_DEATH({ Registry(1).gauge("open_total", "x"); }, "only counters end in _total");
  EXPECT_DEATH({ Registry(1).gauge("open_count", "x"); }, "reserves for histogram series");
  EXPECT_DEATH({ Registry(1).histogram("latency", "x"); }, "does not end in _seconds");
  EXPECT_DEATH({ Registry(1).counter("c", "x", {{"shard", "1"}}); }, "added by the exposition itself");
  EXPECT_DEATH({ Registry(1).histogram("l_seconds", "x", {{"le", "1"}}); }, "Prometheus' bucket bound");
  EXPECT_DEATH({ Registry(1).counter("c", "x", {{"__x", "1"}}); }, "starts with __");
  EXPECT_DEATH({ Registry(1).counter("c", "x", {{"a-b", "1"}}); }, "label \"a-b\" of c is not a Prometheus label name");
  EXPECT_DEATH({ Registry(1).counter("c", "x", {{"a", "1"}, {"a", "2"}}); }, "label \"a\" given twice");
  EXPECT_DEATH({ Registry(0); }, "at least one shard");
}

TEST_F(RegistryDeathTest, ConflictingRegistrationsDie) {
  EXPECT_DEATH(
      {
        Registry r(1);
        r.counter("x", "x");
        r.gauge("x_total", "x");  // (caught earlier: a gauge may not end in _total)
      },
      "_total");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.gauge("x", "x");
        r.histogram("x", "x");
      },
      "does not end in _seconds");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.gauge("x_seconds", "x");
        r.histogram("x_seconds", "x");
      },
      "registered as a gauge and as a histogram");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.counter("x", "one");
        r.counter("x", "two", {{"a", "1"}});
      },
      "other help text");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.counter("x", "h", {{"a", "1"}});
        r.counter("x", "h", {{"b", "1"}});
      },
      "other label names");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.counter("x", "h", {{"a", "1"}});
        r.counter("x", "h", {{"a", "1"}});
      },
      "twice with the same label values");
}

TEST_F(RegistryDeathTest, PlacementMistakesDie) {
  EXPECT_DEATH(
      {
        Registry r(1);
        r.counter("x", "h");
        TestCells cells(r);
        r.counter("y", "h");
      },
      "registered after place\\(\\)");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.counter("x", "h");
        alignas(64) char buf[128];
        r.place(buf + 8, 64);
      },
      "aligned to 64 bytes");
  EXPECT_DEATH(
      {
        Registry r(2);
        r.counter("x", "h");
        alignas(64) char buf[64];
        r.place(buf, sizeof buf);
      },
      "got 64 bytes, the registry needs 128");
  EXPECT_DEATH(
      {
        Registry r(1);
        Counter unregistered;
        r.counter("x", "h");
        TestCells cells(r);
        r.shard(0).add(unregistered);
      },
      "register the metric first");
}

}  // namespace
}  // namespace mnv::metrics
