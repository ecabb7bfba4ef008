// mem/critical_section.h — marks runtime code that an asynchronous trap must not cut short.
//
// A micro-process that runs past its CPU time limit without returning to the kernel is trapped
// from a timer signal (runtime/trap.h, KernelConfig::max_run_ns): the signal jumps out of
// whatever its thread was doing, like a hardware trap. That is safe in the program's own code,
// whose state dies with its process, but not halfway through the runtime's bookkeeping: a list
// being relinked, a heap block being split, a kernel table or the poller's submission queue
// being written. Such code runs inside a CriticalSection (a per-OS-thread flag); the trap is
// taken only outside every section, otherwise it waits for a later tick.
//
// It lives in mem/ because the lowest layer (the micro-heap allocator) needs it too.
#pragma once

#include <atomic>

namespace mnv {

// True while the calling OS thread runs runtime code that must finish (see above). A flag set by
// the outermost section only (a load and a predictable branch in nested ones), not a counter: a
// read-modify-write of a thread-local in every section made the hottest paths (a heap block
// allocated and freed, a request answered) measurably slower.
inline constinit thread_local bool tl_in_critical = false;

class CriticalSection {
 public:
  CriticalSection() : outer_(!tl_in_critical) {
    if (outer_) tl_in_critical = true;
    std::atomic_signal_fence(std::memory_order_seq_cst);  // (the handler runs on this thread)
  }
  ~CriticalSection() {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (outer_) tl_in_critical = false;
  }
  CriticalSection(const CriticalSection&) = delete;
  CriticalSection& operator=(const CriticalSection&) = delete;

 private:
  bool outer_;
};

// The reverse, for the dispatcher: the program's own code runs outside any section inside it.
class OutsideCriticalSection {
 public:
  // (No fences: it brackets a call the compiler cannot see into, which orders it already.)
  OutsideCriticalSection() : saved_(tl_in_critical) { tl_in_critical = false; }
  ~OutsideCriticalSection() { tl_in_critical = saved_; }
  OutsideCriticalSection(const OutsideCriticalSection&) = delete;
  OutsideCriticalSection& operator=(const OutsideCriticalSection&) = delete;

 private:
  bool saved_;
};

}  // namespace mnv
