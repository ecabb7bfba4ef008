#include "runtime/trap.h"

#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/thread.h"

namespace mnv {

namespace {

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
constexpr std::size_t kAltStackBytes = 64 * 1024;
// The calling thread's alternate stack; given back when the thread exits.
struct AltStack {
  void* mem = nullptr;
  ~AltStack() {
    if (mem == nullptr) return;
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    ::sigaltstack(&off, nullptr);
    std::free(mem);
  }
};
thread_local AltStack tl_alt_stack;
std::atomic<bool> g_installed{false};

void write_str(const char* s) {
  std::size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

void on_trap(int signo, siginfo_t* info, void*) {
  TrapPoint* tp = tl_trap_point;
  if (tp != nullptr && tl_current.thread != nullptr) {
    tp->signo = signo;
    tp->address = reinterpret_cast<std::uintptr_t>(info->si_addr);
    siglongjmp(tp->env, 1);
  }
  // Not in a micro-thread: a runtime or program bug. Say so loudly, then die of the signal.
  char line[160];
  std::snprintf(line, sizeof line, "mnv: fatal %s at address %p outside any micro-thread; backtrace:\n",
                describe_signal(signo), info->si_addr);
  write_str(line);
  void* frames[64];
  int n = ::backtrace(frames, 64);
  ::backtrace_symbols_fd(frames, n, STDERR_FILENO);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(signo, &dfl, nullptr);
  ::raise(signo);
  std::abort();
}

}  // namespace

const char* describe_signal(int signo) {
  switch (signo) {
    case SIGSEGV: return "SIGSEGV (invalid memory access)";
    case SIGBUS: return "SIGBUS (bus error)";
    case SIGFPE: return "SIGFPE (arithmetic error, e.g. division by zero)";
    case SIGILL: return "SIGILL (illegal instruction)";
    default: return "signal";
  }
}

void install_trap_stack() {
  if (tl_alt_stack.mem != nullptr) return;
  void* mem = std::malloc(kAltStackBytes);
  if (mem == nullptr) return;
  stack_t st{};
  st.ss_sp = mem;
  st.ss_size = kAltStackBytes;
  if (::sigaltstack(&st, nullptr) == 0) {
    tl_alt_stack.mem = mem;
  } else {
    std::free(mem);
  }
}

void install_trap_handlers() {
  install_trap_stack();
  if (g_installed.exchange(true)) return;
  struct sigaction sa {};
  sa.sa_sigaction = on_trap;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  for (int s : kSignals) ::sigaction(s, &sa, nullptr);
}

}  // namespace mnv
