// perf/protect_bench.cc — what one isolation switch costs on this machine (Google Benchmark).
//
// Isolation modes hide a micro-heap (and, in strict, the kernel heap) with mprotect() whenever
// its owner is not running, so each process switch costs a close and an open. These benchmarks
// measure that primitive alone, through the same HeapPool/KernelHeap code the kernel uses, to
// give the floor any mprotect-based isolation pays per switch (perf/RESULTS.md, "Isolation"):
//
//   syscall                 getppid(): the bare system call round trip, for scale
//   heap toggle/N           an 8-page micro-heap (its own VMA) with N pages touched:
//                           PROT_NONE then PROT_READ|PROT_WRITE; ns_per_op is one mprotect
//   kernel heap toggle/H    a 6 MiB kernel heap with 38 pages touched across its tables,
//                           in 4 KiB pages (H=0) or transparent huge pages (H=1)
//   heap toggle, busy sibling/4
//                           heap toggle/4 while another thread of the process (as another
//                           shard would be) runs on another CPU: removing access then needs a
//                           TLB-shootdown IPI to that CPU (skipped on a 1-CPU cpuset)
//
// Run: bazel run --config=opt //perf:protect_bench (tools/mnv bench pins it to one core).
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <benchmark/benchmark.h>

#include "mem/heap_pool.h"
#include "mem/kernel_heap.h"
#include "mem/page.h"

namespace mnv {
namespace {

void BM_Syscall(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(::syscall(SYS_getppid));
  state.counters["ns_per_op"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                   benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Syscall)->Name("syscall");

void BM_HeapToggle(benchmark::State& state) {
  const auto touched = static_cast<std::size_t>(state.range(0));
  HeapPool pool(8, 4, 8, HeapPool::Guards::kSeparate);
  Heap* heap = pool.acquire();
  if (heap == nullptr) {
    state.SkipWithError("no heap");
    return;
  }
  auto* bytes = reinterpret_cast<volatile char*>(heap);
  for (std::size_t i = 1; i < touched; ++i) bytes[i * kPageSize] = 1;  // page 0 holds the header
  for (auto _ : state) {
    pool.protect(heap, PROT_NONE);
    pool.protect(heap, PROT_READ | PROT_WRITE);
  }
  state.counters["ns_per_op"] = benchmark::Counter(static_cast<double>(2 * state.iterations()),
                                                   benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  pool.release(heap);
}
BENCHMARK(BM_HeapToggle)->Name("heap toggle")->Arg(1)->Arg(2)->Arg(4)->Arg(8);

void BM_HeapToggleBusySibling(benchmark::State& state) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  ::sched_getaffinity(0, sizeof allowed, &allowed);
  int here = ::sched_getcpu();
  int other = -1;
  for (int c = 0; c < CPU_SETSIZE && other < 0; ++c) {
    if (c != here && CPU_ISSET(c, &allowed)) other = c;
  }
  if (other < 0) {
    state.SkipWithError("needs a second CPU in the cpuset");
    return;
  }
  // Pin this thread where it is, so the sibling never shares its CPU.
  cpu_set_t mine;
  CPU_ZERO(&mine);
  CPU_SET(here, &mine);
  ::sched_setaffinity(0, sizeof mine, &mine);
  std::atomic<bool> stop{false};
  std::thread sibling([&stop, other] {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(other, &set);
    ::sched_setaffinity(0, sizeof set, &set);
    while (!stop.load(std::memory_order_relaxed)) {
    }
  });
  BM_HeapToggle(state);
  stop.store(true);
  sibling.join();
  ::sched_setaffinity(0, sizeof allowed, &allowed);
}
BENCHMARK(BM_HeapToggleBusySibling)->Name("heap toggle, busy sibling")->Arg(4)->UseRealTime();

void BM_KernelHeapToggle(benchmark::State& state) {
  KernelHeap k(1536, /*huge_pages=*/state.range(0) != 0);
  if (!k.ok()) {
    state.SkipWithError("no kernel heap");
    return;
  }
  // Touched as the kernel's tables are: the first entries of several tables spread over it.
  for (std::size_t i = 0; i < 38; ++i) k.segment().base()[(i * 157 % 1536) * kPageSize] = 1;
  for (auto _ : state) {
    k.protect(PROT_NONE);
    k.protect(PROT_READ | PROT_WRITE);
  }
  state.counters["ns_per_op"] = benchmark::Counter(static_cast<double>(2 * state.iterations()),
                                                   benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_KernelHeapToggle)->Name("kernel heap toggle")->Arg(0)->Arg(1);

}  // namespace
}  // namespace mnv

BENCHMARK_MAIN();
