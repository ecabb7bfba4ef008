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
//   heap toggle, no pages   the same VMA with no page ever touched: the per-call floor (the
//                           system call and the VMA update, no page-table entry to change)
//   heap switch/C/L         open a heap, write to it, close it, round robin over L live heaps
//                           of a C-heap pool (2 x C VMAs), as the server switches between
//                           connections: does a large VMA tree or a cold heap cost more?
//   heap toggle, busy sibling/4
//                           heap toggle/4 while another thread of the process (as another
//                           shard would be) runs on another CPU: removing access then needs a
//                           TLB-shootdown IPI to that CPU (skipped on a 1-CPU cpuset)
//   heap toggle, busy sibling process/4
//                           the same with the busy sibling a process of its own (as shards
//                           run with ShardMode::kProcesses): no other CPU runs this address
//                           space, so no IPI
//
// Run: bazel run --config=opt //perf:protect_bench (tools/mnv bench pins it to one core).
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <atomic>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "mem/heap_pool.h"
#include "mem/kernel_heap.h"
#include "mem/page.h"
#include "mem/segment.h"

namespace mnv {
namespace {

// Reports ns_per_op: the time of one call, where each iteration made `calls` of them.
void report_ns_per_call(benchmark::State& state, int calls) {
  state.counters["ns_per_op"] = benchmark::Counter(static_cast<double>(calls) * static_cast<double>(state.iterations()),
                                                   benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_Syscall(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(::syscall(SYS_getppid));
  report_ns_per_call(state, 1);
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
  report_ns_per_call(state, 2);
  pool.release(heap);
}
BENCHMARK(BM_HeapToggle)->Name("heap toggle")->Arg(1)->Arg(2)->Arg(4)->Arg(8);

// The fixed part of a call: an 8-page VMA (with its PROT_READ guard, as in the pool) that has
// no pages at all, so no page-table entry changes: what remains is the system call and the
// VMA update itself.
void BM_VmaOnly(benchmark::State& state) {
  Segment seg = Segment::map(9);
  if (!seg) {
    state.SkipWithError("no segment");
    return;
  }
  ::mprotect(seg.base() + 8 * kPageSize, kPageSize, PROT_READ);
  for (auto _ : state) {
    ::mprotect(seg.base(), 8 * kPageSize, PROT_NONE);
    ::mprotect(seg.base(), 8 * kPageSize, PROT_READ | PROT_WRITE);
  }
  report_ns_per_call(state, 2);
}
BENCHMARK(BM_VmaOnly)->Name("heap toggle, no pages");

// Round robin over `live` heaps of a pool of `count` (as the echo server switches between its
// connections): each heap is cold when its turn comes, and the process has 2 x count VMAs.
void BM_HeapSwitch(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  const auto live = static_cast<std::size_t>(state.range(1));
  HeapPool pool(8, count, 8, HeapPool::Guards::kSeparate);
  std::vector<Heap*> heaps;
  for (std::size_t i = 0; i < live; ++i) {
    Heap* h = pool.acquire();
    if (h == nullptr) {
      state.SkipWithError("no heap");
      return;
    }
    reinterpret_cast<volatile char*>(h)[kPageSize] = 1;  // two pages touched, as a busy connection
    pool.protect(h, PROT_NONE);
    heaps.push_back(h);
  }
  std::size_t i = 0;
  for (auto _ : state) {
    Heap* h = heaps[i];
    pool.protect(h, PROT_READ | PROT_WRITE);
    reinterpret_cast<volatile char*>(h)[kPageSize + 64] = 1;
    pool.protect(h, PROT_NONE);
    if (++i == live) i = 0;
  }
  report_ns_per_call(state, 2);
  for (Heap* h : heaps) pool.release(h);
}
BENCHMARK(BM_HeapSwitch)->Name("heap switch")->Args({16, 1})->Args({1024, 1000})->Args({8192, 1000})->Args({8192, 8000});

// Runs heap toggle/N while something spins on another CPU: a thread of this process (its
// address space is live there) or a process of its own (another address space).
void heap_toggle_with_busy_sibling(benchmark::State& state, bool process) {
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
  auto spin_on_other = [other](const std::atomic<bool>* stop) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(other, &set);
    ::sched_setaffinity(0, sizeof set, &set);
    while (stop == nullptr || !stop->load(std::memory_order_relaxed)) {
    }
  };
  if (process) {
    pid_t child = ::fork();
    if (child == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      spin_on_other(nullptr);  // until killed
    }
    BM_HeapToggle(state);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
  } else {
    std::atomic<bool> stop{false};
    std::thread sibling(spin_on_other, &stop);
    BM_HeapToggle(state);
    stop.store(true);
    sibling.join();
  }
  ::sched_setaffinity(0, sizeof allowed, &allowed);
}

void BM_HeapToggleBusySibling(benchmark::State& state) { heap_toggle_with_busy_sibling(state, false); }
BENCHMARK(BM_HeapToggleBusySibling)->Name("heap toggle, busy sibling")->Arg(4)->UseRealTime();

void BM_HeapToggleBusySiblingProcess(benchmark::State& state) { heap_toggle_with_busy_sibling(state, true); }
BENCHMARK(BM_HeapToggleBusySiblingProcess)->Name("heap toggle, busy sibling process")->Arg(4)->UseRealTime();

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
  report_ns_per_call(state, 2);
}
BENCHMARK(BM_KernelHeapToggle)->Name("kernel heap toggle")->Arg(0)->Arg(1);

}  // namespace
}  // namespace mnv

BENCHMARK_MAIN();
