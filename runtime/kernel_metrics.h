// runtime/kernel_metrics.h — what a virtual kernel counts about itself into its shard's metric
// cells (KernelConfig::metrics): loop turns, dispatches, poller submissions and completions,
// socket bytes in and out, traps by signal, processes reclaimed after a death, micro-heap pages
// in use and live processes.
//
// The kernel keeps these as plain fields of its own and adds what changed to its cells within a
// millisecond of a turn that dispatched anything, waking for it if need be (so a reader lags a
// busy shard by at most ~1 ms and sees an idle one's exact counts): the hot paths pay a plain
// increment, the cells at most a thousand publications a second per shard.
#pragma once

#include "metrics/registry.h"

namespace mnv {

struct KernelMetrics {
  // Traps by signal: the hardware ones, the runaway timer's, and any other.
  static constexpr int kTrapKinds = 6;
  static constexpr const char* kTrapSignals[kTrapKinds] = {"SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGXCPU", "other"};
  static int trap_kind(int signo);

  metrics::Counter loop_turns, dispatches;
  metrics::Counter poller_submissions, poller_completions;
  metrics::Counter bytes_in, bytes_out;
  metrics::Counter traps[kTrapKinds];
  metrics::Counter processes_reclaimed;  // died (trap or unhandled error) and were reclaimed
  metrics::Gauge heap_pages;             // micro-heap pages touched and not given back
  metrics::Gauge processes;              // micro-processes alive

  // Registers every series (before the registry is placed).
  static KernelMetrics add_to(metrics::Registry& registry);
};

}  // namespace mnv
