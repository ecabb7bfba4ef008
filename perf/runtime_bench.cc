// perf/runtime_bench.cc — micro-benchmarks of the micro-thread runtime (Google Benchmark).
//
//   yield+resume       one thread yielding: queue push, dispatcher pop, coroutine resume
//   spawn+finish       a driver spawns small children, 16 per yield; each runs and ends
//   request/respond    a client thread requests, a server thread listens and responds
//   heap alloc/free    the micro-heap allocator, stack-ordered and out of order
//
// Every benchmark reports ns_per_op: nanoseconds per yield, spawn, round trip or alloc/free.
//
// Run: bazel run --config=opt //perf:runtime_bench (tools/mnv bench pins it to one core).
#include <benchmark/benchmark.h>

#include <vector>

#include "mem/heap.h"
#include "mem/segment.h"
#include "runtime/exec.h"
#include "runtime/future.h"
#include "runtime/process.h"
#include "runtime/test_process.h"

namespace mnv {
namespace {

Thread yielder(std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) co_await yield();
}

void BM_YieldResume(benchmark::State& state) {
  TestProcess p;
  for (auto _ : state) {
    state.PauseTiming();
    p->start(yielder, std::int64_t{1000});
    state.ResumeTiming();
    p->dispatch();
  }
  state.SetItemsProcessed(state.iterations() * 1000);
  state.counters["ns_per_op"] = benchmark::Counter(static_cast<double>(state.iterations() * 1000),
                                                      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_YieldResume);

Thread tiny(std::int64_t* done) {
  ++*done;
  co_return;
}

Thread spawner(std::int64_t n, std::int64_t* done) {
  for (std::int64_t i = 0; i < n; i += 16) {
    for (int k = 0; k < 16; ++k) co_await spawn(tiny(done));
    co_await yield();  // the 16 children run and end
  }
}

void BM_SpawnFinish(benchmark::State& state) {
  TestProcess p;
  std::int64_t done = 0;
  for (auto _ : state) {
    state.PauseTiming();
    p->start(spawner, std::int64_t{1024}, &done);
    state.ResumeTiming();
    p->dispatch();
  }
  state.SetItemsProcessed(done);
  state.counters["ns_per_op"] = benchmark::Counter(static_cast<double>(done),
                                                      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_SpawnFinish);

Thread server() {
  for (;;) {
    Message m = co_await listen();
    respond(m.from, m.data);
  }
}

Thread client(ThreadRef s, std::int64_t n) {
  int v = 0;
  for (std::int64_t i = 0; i < n; ++i) co_await request(s, &v);
}

void BM_RequestRespond(benchmark::State& state) {
  TestProcess p;
  ThreadRef s = p->start(server);
  p->dispatch();
  for (auto _ : state) {
    state.PauseTiming();
    p->start(client, s, std::int64_t{1000});
    state.ResumeTiming();
    p->dispatch();
  }
  state.SetItemsProcessed(state.iterations() * 1000);
  state.counters["ns_per_op"] = benchmark::Counter(static_cast<double>(state.iterations() * 1000),
                                                          benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_RequestRespond);

void BM_HeapAllocFreeStackOrder(benchmark::State& state) {
  Segment seg = Segment::map(16);
  Heap* h = Heap::init(seg.base(), 16);
  for (auto _ : state) {
    void* a = h->allocate(64);
    void* b = h->allocate(200);
    benchmark::DoNotOptimize(a);
    benchmark::DoNotOptimize(b);
    h->free(b);
    h->free(a);
  }
  state.SetItemsProcessed(state.iterations() * 2);
  state.counters["ns_per_op"] = benchmark::Counter(static_cast<double>(state.iterations() * 2),
                                                   benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_HeapAllocFreeStackOrder);

void BM_HeapAllocFreeOutOfOrder(benchmark::State& state) {
  Segment seg = Segment::map(16);
  Heap* h = Heap::init(seg.base(), 16);
  void* keep = h->allocate(64);
  for (auto _ : state) {
    void* a = h->allocate(64);
    void* b = h->allocate(200);
    benchmark::DoNotOptimize(a);
    benchmark::DoNotOptimize(b);
    h->free(a);  // not on top: goes to its class's free list
    h->free(b);  // on top: lowers top, not past a
  }
  h->free(keep);
  state.SetItemsProcessed(state.iterations() * 2);
  state.counters["ns_per_op"] = benchmark::Counter(static_cast<double>(state.iterations() * 2),
                                                   benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_HeapAllocFreeOutOfOrder);

}  // namespace
}  // namespace mnv

BENCHMARK_MAIN();
