// perf/metrics_bench.cc — what metrics cost on a shard's hot path, and what a scrape costs.
//
//   counter add          one relaxed load + store in the shard's own cell
//   gauge add            the same, signed
//   histogram record     bucket index (clz, shift) + sum + max + bucket count; values drawn from
//                        a spread of latencies so the branches do not learn one value
//   private histogram    perf's one-thread LatencyHistogram::record, for comparison
//   scrape               the whole Prometheus exposition of a registry (8 shards, 20 counters,
//                        4 gauges, 4 histograms): reader side only, the shards never wait on it
//
// Every benchmark reports ns_per_op. Run: bazel run --config=opt //perf:metrics_bench.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "metrics/latency_histogram.h"
#include "metrics/prometheus.h"
#include "metrics/registry.h"
#include "metrics/test_cells.h"

namespace mnv::metrics {
namespace {

void ns_per_op(benchmark::State& state, std::int64_t ops_per_iteration) {
  state.counters["ns_per_op"] = benchmark::Counter(static_cast<double>(state.iterations() * ops_per_iteration),
                                                   benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Latencies from 2 µs to ~50 ms, log-spread, precomputed.
std::vector<std::uint64_t> latencies() {
  std::mt19937_64 gen(42);
  std::lognormal_distribution<double> d(std::log(2e5), 1.5);
  std::vector<std::uint64_t> v(4096);
  for (auto& x : v) x = static_cast<std::uint64_t>(d(gen));
  return v;
}

void BM_CounterAdd(benchmark::State& state) {
  Registry reg(8);
  Counter c = reg.counter("requests", "Requests.");
  TestCells cells(reg);
  ShardCells shard = reg.shard(3);
  for (auto _ : state) {
    for (int i = 0; i < 1000; ++i) shard.add(c);
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(reg.total(c));
  ns_per_op(state, 1000);
}
BENCHMARK(BM_CounterAdd);

void BM_GaugeAdd(benchmark::State& state) {
  Registry reg(8);
  Gauge g = reg.gauge("open", "Open.");
  TestCells cells(reg);
  ShardCells shard = reg.shard(3);
  for (auto _ : state) {
    for (int i = 0; i < 1000; ++i) shard.add(g, (i & 1) ? 1 : -1);
    benchmark::ClobberMemory();
  }
  ns_per_op(state, 1000);
}
BENCHMARK(BM_GaugeAdd);

void BM_HistogramRecord(benchmark::State& state) {
  Registry reg(8);
  Histogram h = reg.histogram("latency_seconds", "Latency.");
  TestCells cells(reg);
  ShardCells shard = reg.shard(3);
  std::vector<std::uint64_t> v = latencies();
  for (auto _ : state) {
    for (std::uint64_t x : v) shard.record(h, x);
    benchmark::ClobberMemory();
  }
  ns_per_op(state, static_cast<std::int64_t>(v.size()));
}
BENCHMARK(BM_HistogramRecord);

void BM_PrivateLatencyHistogramRecord(benchmark::State& state) {
  LatencyHistogram h;
  std::vector<std::uint64_t> v = latencies();
  for (auto _ : state) {
    for (std::uint64_t x : v) h.record(x);
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(h.count());
  ns_per_op(state, static_cast<std::int64_t>(v.size()));
}
BENCHMARK(BM_PrivateLatencyHistogramRecord);

void BM_Scrape(benchmark::State& state) {
  constexpr int kShards = 8;
  Registry reg(kShards);
  std::vector<Counter> counters;
  for (int i = 0; i < 20; ++i) counters.push_back(reg.counter("events", "Events, by kind.", {{"kind", std::to_string(i)}}));
  std::vector<Gauge> gauges;
  for (int i = 0; i < 4; ++i) gauges.push_back(reg.gauge("level_" + std::to_string(i), "A level."));
  std::vector<Histogram> hists;
  for (int i = 0; i < 4; ++i) hists.push_back(reg.histogram("op_" + std::to_string(i) + "_seconds", "Latency."));
  TestCells cells(reg);
  std::vector<std::uint64_t> v = latencies();
  for (int s = 0; s < kShards; ++s) {
    for (Counter c : counters) reg.shard(s).add(c, 12345);
    for (Histogram h : hists) {
      for (std::uint64_t x : v) reg.shard(s).record(h, x);
    }
  }
  std::string out;
  for (auto _ : state) {
    out.clear();
    append_prometheus(reg, &out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["bytes"] = static_cast<double>(out.size());
  ns_per_op(state, 1);
}
BENCHMARK(BM_Scrape);

}  // namespace
}  // namespace mnv::metrics

BENCHMARK_MAIN();
