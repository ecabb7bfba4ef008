// runtime/trap.h — hardware traps inside micro-threads become errors of that thread.
//
// SIGSEGV, SIGBUS, SIGFPE and SIGILL are caught on an alternate signal stack. If the OS thread
// was running a micro-thread (inside Process::dispatch), the handler records the signal and
// address and jumps back to the dispatch point (siglongjmp, no signal mask saved: the handler is
// SA_NODEFER). The dispatcher raises EFAULT into the faulted thread: its finally handler runs
// with the signal number, address and a one-line description; its frame is never resumed; and
// the kernel reclaims the whole micro-process (heap and fds) after that dispatch. Every other
// process goes on.
//
// A trap anywhere else (the kernel itself, a shard thread between dispatches, main) is a bug in
// the runtime or the program: it is never swallowed. The handler prints the signal, the address
// and a backtrace, restores the default action and re-raises, so the process dies loudly.
//
// Runaway micro-processes. Micro-threads are cooperative: one that never yields (a loop that
// never ends) would hold its whole shard. While a RunawayTimer lives on an OS thread, a CPU-time
// timer sends it SIGXCPU every quarter of `max_run_ns` of that thread's CPU time (an idle or
// sleeping shard gets none). When one Process::dispatch has gone on for `max_run_ns` of CPU
// time, the tick traps the thread that is running, as a hardware fault would (signal SIGXCPU,
// the address is where it was): its finally handler runs with EFAULT, its process is reclaimed,
// every other process goes on. The trap is taken only in the program's own code: not inside the
// runtime's bookkeeping (mem/critical_section.h) and not inside a system library (the C and C++
// libraries, the vDSO: a lock of theirs may be held); there a later tick tries again.
#pragma once

#include <csetjmp>
#include <cstdint>

namespace mnv {

// Where a trapped micro-thread's OS thread jumps back to. One per active Process::dispatch.
struct TrapPoint {
  sigjmp_buf env;
  int signo = 0;
  std::uintptr_t address = 0;
};

inline constinit thread_local TrapPoint* tl_trap_point = nullptr;
// Process dispatches begun on this OS thread (the runaway clock restarts with each one).
inline constinit thread_local std::uint64_t tl_dispatches = 0;

// What the runaway clock saw of the dispatch that ended last on this thread: CPU time it ran at
// least (whole tick periods, a quarter of max_run_ns each, between its first tick and its last),
// or 0 when it saw under two ticks or there is no clock. Anything above 0 was a stall for every
// other process of its kernel, which the kernel reports (Kernel::report_stall).
std::int64_t last_dispatch_ran_at_least_ns();

class RunawayTimer {
 public:
  // Arms the runaway clock on the calling OS thread (see above); max_run_ns > 0. A failure is
  // logged once and leaves it unarmed.
  explicit RunawayTimer(std::int64_t max_run_ns);
  ~RunawayTimer();
  RunawayTimer(const RunawayTimer&) = delete;
  RunawayTimer& operator=(const RunawayTimer&) = delete;
  bool armed() const { return armed_; }

 private:
  bool armed_ = false;
  void* timer_ = nullptr;  // a timer_t
};

// Installs the handlers (process-wide, idempotent) and an alternate stack for the calling OS
// thread (each shard thread calls it too; the main thread's is installed on first call).
void install_trap_handlers();
// Gives the calling OS thread its alternate signal stack (idempotent per thread).
void install_trap_stack();

// "SIGSEGV (invalid memory access)" etc.
const char* describe_signal(int signo);

}  // namespace mnv
