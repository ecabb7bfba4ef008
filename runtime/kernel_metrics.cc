// runtime/kernel_metrics.cc — the kernel's series, by name.
#include "runtime/kernel_metrics.h"

#include <csignal>

namespace mnv {

int KernelMetrics::trap_kind(int signo) {
  switch (signo) {
    case SIGSEGV: return 0;
    case SIGBUS: return 1;
    case SIGFPE: return 2;
    case SIGILL: return 3;
    case SIGXCPU: return 4;
    default: return 5;
  }
}

KernelMetrics KernelMetrics::add_to(metrics::Registry& r) {
  KernelMetrics m;
  m.loop_turns = r.counter("mnv_loop_turns", "Turns of the shard's event loop.");
  m.dispatches = r.counter("mnv_dispatches", "Micro-process dispatches (each runs its runnable threads).");
  m.poller_submissions = r.counter("mnv_poller_submissions",
                                   "Requests handed to the OS poller (io_uring SQEs; epoll_ctl calls; fds passed to poll).");
  m.poller_completions = r.counter("mnv_poller_completions", "Completions taken from the OS poller (io_uring CQEs; ready events).");
  m.bytes_in = r.counter("mnv_bytes_received", "Bytes sockets received from their fds.");
  m.bytes_out = r.counter("mnv_bytes_sent", "Bytes sockets sent to their fds.");
  for (int i = 0; i < kTrapKinds; ++i) {
    m.traps[i] = r.counter("mnv_traps", "Micro-processes trapped (a fault, or the runaway timer), by signal.",
                           {{"signal", kTrapSignals[i]}});
  }
  m.processes_reclaimed = r.counter("mnv_processes_reclaimed",
                                    "Micro-processes that died (a trap or an unhandled error) and were reclaimed.");
  m.heap_pages = r.gauge("mnv_heap_pages", "Micro-heap pages touched and not given back, over live micro-processes.");
  m.processes = r.gauge("mnv_processes", "Live micro-processes.");
  return m;
}

}  // namespace mnv
