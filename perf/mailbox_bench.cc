// perf/mailbox_bench.cc — cross-shard mailbox latency and throughput between two pinned threads.
//
// Measures the DESIGN.md §4 targets for shard/mailbox.h ("cross-shard round trip: ≤ 1 µs,
// ≥ 10M msgs/s per pair batched"; the anchor is Seastar's smp::submit_to over SPSC rings with
// batches of 16). Two threads, shard 0 and shard 1, each pinned to its own CPU (the first two the
// process may run on, normally CPU 0 and CPU 1), both busy-polling — no sleeps, no wake-ups:
//
//   round trip   shard 0 sends one message and flushes, shard 1 receives it and sends it back,
//                shard 0 receives it; --round_trips of these after --warmup, each timed with
//                steady_clock (vDSO, ~20 ns, included). Reported as p50/p90/p99/p99.9/max and the
//                mean of the whole run (elapsed / round trips, no per-trip clock reads). Done
//                through Mailboxes (send/flush/receive: what shards use) and, for comparison,
//                through two bare SpscRings (try_push/try_pop: the ring alone).
//   throughput   shard 0 sends --messages messages in batches of --batches (send × batch, then one
//                flush; a full ring makes it flush and retry), shard 1 drains with receive(…, 64)
//                and checks the order. messages/s = messages / elapsed on the receiver.
//
// Output: human-readable lines, then one "RESULT key=value ..." line for scripts. Exits 0 with a
// message (and no RESULT) when fewer than 2 CPUs are usable.
//
// Run: bazel build --config=opt //perf:mailbox_bench && bazel-bin/perf/mailbox_bench
#include <pthread.h>
#include <sched.h>
#include <stdio.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "mem/log.h"
#include "metrics/latency_histogram.h"
#include "shard/mailbox.h"
#include "shard/spsc_ring.h"

ABSL_FLAG(int64_t, round_trips, 1000000, "timed ping-pong round trips");
ABSL_FLAG(int64_t, warmup, 20000, "untimed round trips first");
ABSL_FLAG(int64_t, messages, 30000000, "messages per one-way throughput run");
ABSL_FLAG(std::vector<std::string>, batches, std::vector<std::string>({"1", "16", "32"}),
          "send batch sizes for the throughput runs (one flush per batch)");
ABSL_FLAG(int64_t, capacity, 1024, "messages per ring (a power of two)");

namespace mnv {
namespace {

using Clock = std::chrono::steady_clock;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

inline std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

// The first two CPUs in this process's affinity mask; false if there are fewer.
bool pick_cpus(int* a, int* b) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return false;
  int found = 0;
  for (int c = 0; c < CPU_SETSIZE && found < 2; ++c) {
    if (CPU_ISSET(c, &set)) (found++ == 0 ? *a : *b) = c;
  }
  return found == 2;
}

void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  int r = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  if (r != 0) panic("mailbox_bench: pthread_setaffinity_np(cpu %d): %s", cpu, std::strerror(r));
}

// Both threads leave together (to within a cache-line transfer).
class StartLine {
 public:
  void arrive() {
    arrived_.fetch_add(1, std::memory_order_acq_rel);
    while (arrived_.load(std::memory_order_acquire) < 2) cpu_relax();
  }

 private:
  std::atomic<int> arrived_{0};
};

// Runs a(…) pinned to cpu_a and b(…) pinned to cpu_b, and waits for both.
template <typename A, typename B>
void run_pair(int cpu_a, int cpu_b, A a, B b) {
  std::thread tb([&] {
    pin_to(cpu_b);
    b();
  });
  std::thread ta([&] {
    pin_to(cpu_a);
    a();
  });
  ta.join();
  tb.join();
}

struct Latency {
  metrics::LatencyHistogram hist;
  double mean_ns = 0;  // elapsed / round trips, without per-trip clock reads
};

void print_latency(const char* what, const Latency& l) {
  std::printf("  %-34s p50 %5llu ns  p90 %5llu  p99 %5llu  p99.9 %6llu  max %8llu  mean %6.0f\n",
              what, static_cast<unsigned long long>(l.hist.percentile(50)),
              static_cast<unsigned long long>(l.hist.percentile(90)),
              static_cast<unsigned long long>(l.hist.percentile(99)),
              static_cast<unsigned long long>(l.hist.percentile(99.9)),
              static_cast<unsigned long long>(l.hist.max()), l.mean_ns);
}

// Ping-pong through Mailboxes: send + flush, busy receive.
void mailbox_round_trips(int cpu_a, int cpu_b, std::size_t capacity, std::int64_t warmup,
                         std::int64_t n, bool timed, Latency* out) {
  Mailboxes mb(2, capacity);
  StartLine start;
  const std::int64_t total = warmup + n;
  run_pair(
      cpu_a, cpu_b,
      [&] {
        ShardMessage m;
        std::memset(&m, 0, sizeof m);
        ShardMessage in;
        start.arrive();
        std::uint64_t run_start = 0;
        for (std::int64_t i = 0; i < total; ++i) {
          if (i == warmup) run_start = now_ns();
          std::uint64_t t0 = timed ? now_ns() : 0;
          m.id = static_cast<std::uint64_t>(i);
          if (!mb.send(0, 1, m)) panic("mailbox_bench: ring full in ping-pong");
          mb.flush(0);
          while (mb.receive(0, &in, 1) == 0) {
          }
          if (in.id != m.id) panic("mailbox_bench: got %llu, sent %llu",
                                   static_cast<unsigned long long>(in.id),
                                   static_cast<unsigned long long>(m.id));
          if (timed && i >= warmup) out->hist.record(now_ns() - t0);
        }
        if (!timed) out->mean_ns = static_cast<double>(now_ns() - run_start) / static_cast<double>(n);
      },
      [&] {
        ShardMessage in;
        start.arrive();
        for (std::int64_t i = 0; i < total; ++i) {
          while (mb.receive(1, &in, 1) == 0) {
          }
          if (!mb.send(1, 0, in)) panic("mailbox_bench: ring full in ping-pong");
          mb.flush(1);
        }
      });
}

// The same ping-pong through two bare rings: the ring's own cost, without the mailbox layer.
void ring_round_trips(int cpu_a, int cpu_b, std::size_t capacity, std::int64_t warmup,
                      std::int64_t n, bool timed, Latency* out) {
  SpscRing<ShardMessage> ab(capacity), ba(capacity);
  StartLine start;
  const std::int64_t total = warmup + n;
  run_pair(
      cpu_a, cpu_b,
      [&] {
        ShardMessage m;
        std::memset(&m, 0, sizeof m);
        ShardMessage in;
        start.arrive();
        std::uint64_t run_start = 0;
        for (std::int64_t i = 0; i < total; ++i) {
          if (i == warmup) run_start = now_ns();
          std::uint64_t t0 = timed ? now_ns() : 0;
          m.id = static_cast<std::uint64_t>(i);
          if (!ab.try_push(m)) panic("mailbox_bench: ring full in ping-pong");
          while (!ba.try_pop(&in)) {
          }
          if (in.id != m.id) panic("mailbox_bench: ring ping-pong out of order");
          if (timed && i >= warmup) out->hist.record(now_ns() - t0);
        }
        if (!timed) out->mean_ns = static_cast<double>(now_ns() - run_start) / static_cast<double>(n);
      },
      [&] {
        ShardMessage in;
        start.arrive();
        for (std::int64_t i = 0; i < total; ++i) {
          while (!ab.try_pop(&in)) {
          }
          if (!ba.try_push(in)) panic("mailbox_bench: ring full in ping-pong");
        }
      });
}

struct Throughput {
  double msgs_per_s = 0;
  std::uint64_t refused = 0;  // sends refused by a full ring (then flushed and retried)
};

// One-way: shard 0 sends `n` messages in batches of `batch`, one flush per batch; shard 1 drains.
Throughput one_way(int cpu_a, int cpu_b, std::size_t capacity, std::int64_t n, int batch) {
  Mailboxes mb(2, capacity);
  StartLine start;
  double elapsed_s = 0;
  run_pair(
      cpu_a, cpu_b,
      [&] {
        ShardMessage m;
        std::memset(&m, 0, sizeof m);
        start.arrive();
        std::int64_t i = 0;
        while (i < n) {
          std::int64_t end = i + batch < n ? i + batch : n;
          while (i < end) {
            m.id = static_cast<std::uint64_t>(i);
            if (!mb.send(0, 1, m)) {
              mb.flush(0);  // full: publish what is staged, let the receiver drain
              cpu_relax();
              continue;
            }
            ++i;
          }
          mb.flush(0);
        }
      },
      [&] {
        ShardMessage in[64];
        start.arrive();
        std::uint64_t t0 = now_ns();
        std::uint64_t next = 0;
        while (next < static_cast<std::uint64_t>(n)) {
          std::size_t got = mb.receive(1, in, 64);
          for (std::size_t k = 0; k < got; ++k) {
            if (in[k].id != next++) panic("mailbox_bench: one-way out of order");
          }
        }
        elapsed_s = static_cast<double>(now_ns() - t0) / 1e9;
      });
  Throughput t;
  t.msgs_per_s = static_cast<double>(n) / elapsed_s;
  t.refused = mb.stats(0).refused;
  return t;
}

int run() {
  int cpu_a = -1, cpu_b = -1;
  if (!pick_cpus(&cpu_a, &cpu_b)) {
    std::printf("mailbox_bench: needs 2 usable CPUs, this process has fewer; skipped\n");
    return 0;
  }
  const std::int64_t trips = absl::GetFlag(FLAGS_round_trips);
  const std::int64_t warmup = absl::GetFlag(FLAGS_warmup);
  const std::int64_t messages = absl::GetFlag(FLAGS_messages);
  const std::int64_t capacity = absl::GetFlag(FLAGS_capacity);
  if (trips <= 0 || warmup < 0 || messages <= 0 || capacity < 2 ||
      (capacity & (capacity - 1)) != 0) {
    std::fprintf(stderr, "mailbox_bench: bad flags (positive counts; capacity a power of two)\n");
    return 2;
  }
  std::vector<int> batches;
  for (const std::string& s : absl::GetFlag(FLAGS_batches)) {
    int b = std::atoi(s.c_str());
    if (b <= 0) {
      std::fprintf(stderr, "mailbox_bench: bad batch size '%s'\n", s.c_str());
      return 2;
    }
    batches.push_back(b);
  }
  const std::size_t cap = static_cast<std::size_t>(capacity);

  std::printf("mailbox_bench: shard 0 on CPU %d, shard 1 on CPU %d; %zu-byte messages, rings of "
              "%zu, busy-polling\n",
              cpu_a, cpu_b, sizeof(ShardMessage), cap);
  std::printf("round trip (ping-pong), %lld round trips after %lld warm-up:\n",
              static_cast<long long>(trips), static_cast<long long>(warmup));
  // Histograms are large (58 KiB): keep them off the stack.
  auto mbox = std::make_unique<Latency>();
  auto ring = std::make_unique<Latency>();
  mailbox_round_trips(cpu_a, cpu_b, cap, warmup, trips, true, mbox.get());
  mailbox_round_trips(cpu_a, cpu_b, cap, warmup, trips, false, mbox.get());
  ring_round_trips(cpu_a, cpu_b, cap, warmup, trips, true, ring.get());
  ring_round_trips(cpu_a, cpu_b, cap, warmup, trips, false, ring.get());
  print_latency("Mailboxes send+flush / receive:", *mbox);
  print_latency("bare SpscRing try_push / try_pop:", *ring);

  std::printf("one-way throughput, %lld messages per run (receiver drains up to 64 per call):\n",
              static_cast<long long>(messages));
  std::vector<Throughput> tput;
  for (int b : batches) {
    Throughput t = one_way(cpu_a, cpu_b, cap, messages, b);
    tput.push_back(t);
    std::printf("  batch %3d (one flush per batch): %7.2f M msgs/s  (%5.1f ns/msg; %llu full-ring "
                "retries)\n",
                b, t.msgs_per_s / 1e6, 1e9 / t.msgs_per_s,
                static_cast<unsigned long long>(t.refused));
  }

  std::uint64_t p50 = mbox->hist.percentile(50);
  double batched = 0;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    if (batches[i] == 16) batched = tput[i].msgs_per_s;
  }
  std::printf("targets (DESIGN.md §4): round trip p50 %llu ns <= 1000 ns: %s",
              static_cast<unsigned long long>(p50), p50 <= 1000 ? "met" : "MISSED");
  if (batched > 0) {
    std::printf("; batch-16 %.2f M msgs/s >= 10 M: %s", batched / 1e6,
                batched >= 10e6 ? "met" : "MISSED");
  }
  std::printf("\n");

  std::printf("RESULT cpu_a=%d cpu_b=%d rt_p50_ns=%llu rt_p90_ns=%llu rt_p99_ns=%llu "
              "rt_p999_ns=%llu rt_max_ns=%llu rt_mean_ns=%.0f ring_rt_p50_ns=%llu "
              "ring_rt_p99_ns=%llu ring_rt_mean_ns=%.0f",
              cpu_a, cpu_b, static_cast<unsigned long long>(p50),
              static_cast<unsigned long long>(mbox->hist.percentile(90)),
              static_cast<unsigned long long>(mbox->hist.percentile(99)),
              static_cast<unsigned long long>(mbox->hist.percentile(99.9)),
              static_cast<unsigned long long>(mbox->hist.max()), mbox->mean_ns,
              static_cast<unsigned long long>(ring->hist.percentile(50)),
              static_cast<unsigned long long>(ring->hist.percentile(99)), ring->mean_ns);
  for (std::size_t i = 0; i < batches.size(); ++i) {
    std::printf(" batch%d_msgs_per_s=%.0f", batches[i], tput[i].msgs_per_s);
  }
  std::printf("\n");
  return 0;
}

}  // namespace
}  // namespace mnv

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return mnv::run();
}
