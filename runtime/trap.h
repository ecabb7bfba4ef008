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

// Installs the handlers (process-wide, idempotent) and an alternate stack for the calling OS
// thread (each shard thread calls it too; the main thread's is installed on first call).
void install_trap_handlers();
// Gives the calling OS thread its alternate signal stack (idempotent per thread).
void install_trap_stack();

// "SIGSEGV (segmentation fault)" etc.
const char* describe_signal(int signo);

}  // namespace mnv
