// mem/critical_section.h — marks runtime code that an asynchronous trap must not cut short.
//
// A micro-process that runs past its CPU time limit without returning to the kernel is trapped
// from a timer signal (runtime/trap.h, KernelConfig::max_run_ns): the signal jumps out of
// whatever its thread was doing, like a hardware trap. That is safe in the program's own code,
// whose state dies with its process, but not halfway through the runtime's bookkeeping: a list
// being relinked, a heap block being split, a kernel table or the poller's submission queue
// being written. Such code runs inside a CriticalSection (a per-OS-thread depth count, two
// instructions); the trap is taken only at depth 0, otherwise it waits for a later tick.
//
// It lives in mem/ because the lowest layer (the micro-heap allocator) needs it too.
#pragma once

#include <atomic>

namespace mnv {

// > 0 while the calling OS thread runs runtime code that must finish (see above).
inline constinit thread_local int tl_critical_depth = 0;

class CriticalSection {
 public:
  CriticalSection() {
    ++tl_critical_depth;
    std::atomic_signal_fence(std::memory_order_seq_cst);  // (the handler runs on this thread)
  }
  ~CriticalSection() {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    --tl_critical_depth;
  }
  CriticalSection(const CriticalSection&) = delete;
  CriticalSection& operator=(const CriticalSection&) = delete;
};

// The reverse, for the dispatcher: the program's own code runs at depth 0 inside it.
class OutsideCriticalSection {
 public:
  OutsideCriticalSection() : saved_(tl_critical_depth) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    tl_critical_depth = 0;
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  ~OutsideCriticalSection() {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    tl_critical_depth = saved_;
  }
  OutsideCriticalSection(const OutsideCriticalSection&) = delete;
  OutsideCriticalSection& operator=(const OutsideCriticalSection&) = delete;

 private:
  int saved_;
};

}  // namespace mnv
