#include "runtime/trap.h"

#include <execinfo.h>
#include <signal.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "mem/critical_section.h"
#include "mem/log.h"
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

// --- runaway micro-processes (see trap.h) ---
// Ticks per max_run: the timer's period is a quarter of it, and the trap comes on the tick after
// four whole periods of one dispatch.
constexpr int kTicksPerLimit = 4;
thread_local bool tl_runaway_armed = false;  // a runaway clock ticks at this thread (else a tick is stale)
thread_local std::uint64_t tl_runaway_dispatch = 0;
thread_local int tl_runaway_ticks = 0;
thread_local std::int64_t tl_runaway_period_ns = 0;

// The executable code of the system libraries (and the vDSO), where a trap must not land: read
// from /proc/self/maps when the first clock is armed. Fixed size, read by the handler.
constexpr int kMaxSystemRanges = 64;
struct CodeRange {
  std::uintptr_t begin, end;
};
CodeRange g_system_code[kMaxSystemRanges];
std::atomic<int> g_system_ranges{0};
std::once_flag g_runaway_once;

void find_system_code() {
  FILE* f = std::fopen("/proc/self/maps", "re");
  if (f == nullptr) return;
  char line[4096];
  int n = 0;
  while (n < kMaxSystemRanges && std::fgets(line, sizeof line, f) != nullptr) {
    unsigned long begin, end;
    char perms[8];
    int path_at = 0;
    if (std::sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &begin, &end, perms, &path_at) < 3 || perms[2] != 'x') continue;
    const char* path = line + path_at;
    if (std::strncmp(path, "/usr/", 5) == 0 || std::strncmp(path, "/lib", 4) == 0 || std::strncmp(path, "[vdso]", 6) == 0 ||
        std::strncmp(path, "[vsyscall]", 10) == 0) {
      g_system_code[n++] = CodeRange{begin, end};
    }
  }
  std::fclose(f);
  g_system_ranges.store(n, std::memory_order_release);
}

bool in_system_code(std::uintptr_t pc) {
  int n = g_system_ranges.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    if (pc >= g_system_code[i].begin && pc < g_system_code[i].end) return true;
  }
  return false;
}

std::uintptr_t interrupted_pc(void* context) {
  auto* uc = static_cast<ucontext_t*>(context);
#if defined(__x86_64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.pc);
#else
#error "runaway traps need the interrupted program counter of this architecture"
#endif
}

void on_runaway_tick(int signo, siginfo_t* info, void* context) {
  if (info->si_code != SI_TIMER) {
    // Not a runaway clock's tick (RLIMIT_CPU's SIGXCPU, or one sent by hand): the default action.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(signo, &dfl, nullptr);
    ::raise(signo);
    return;
  }
  if (!tl_runaway_armed) return;
  TrapPoint* tp = tl_trap_point;
  if (tp == nullptr || tl_current.thread == nullptr) {  // between dispatches: nobody is running
    tl_runaway_ticks = 0;
    return;
  }
  if (tl_dispatches != tl_runaway_dispatch) {  // a new dispatch since the last tick
    tl_runaway_dispatch = tl_dispatches;
    tl_runaway_ticks = 1;
    return;
  }
  if (++tl_runaway_ticks <= kTicksPerLimit) return;
  std::uintptr_t pc = interrupted_pc(context);
  if (tl_in_critical || in_system_code(pc)) return;  // not here: the next tick tries again
  tl_runaway_ticks = 0;
  tp->signo = SIGXCPU;
  tp->address = pc;
  siglongjmp(tp->env, 1);
}

}  // namespace

std::int64_t last_dispatch_ran_at_least_ns() {
  std::atomic_signal_fence(std::memory_order_seq_cst);  // (written by the handler, on this thread)
  if (!tl_runaway_armed || tl_runaway_dispatch != tl_dispatches || tl_runaway_ticks < 2) return 0;
  return (tl_runaway_ticks - 1) * tl_runaway_period_ns;
}

RunawayTimer::RunawayTimer(std::int64_t max_run_ns) {
  MNV_ASSERT(max_run_ns > 0);
  std::call_once(g_runaway_once, [] {
    find_system_code();
    struct sigaction sa {};
    sa.sa_sigaction = on_runaway_tick;
    sigemptyset(&sa.sa_mask);
    // (SA_RESTART: a tick that lands in a system call of the kernel's loop must not fail it.)
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESTART;
    ::sigaction(SIGXCPU, &sa, nullptr);
  });
  install_trap_stack();
  sigevent sev {};
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = SIGXCPU;
  sev._sigev_un._tid = ::gettid();  // (sigev_notify_thread_id, where glibc names it)
  timer_t timer;
  if (::timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &timer) != 0) {
    log_line("mnv: the runaway clock could not be armed (timer_create: %s): micro-processes are not limited",
             std::strerror(errno));
    return;
  }
  std::int64_t period = std::max<std::int64_t>(max_run_ns / kTicksPerLimit, 1'000'000);
  itimerspec its{};
  its.it_interval.tv_sec = period / 1'000'000'000;
  its.it_interval.tv_nsec = period % 1'000'000'000;
  its.it_value = its.it_interval;
  tl_runaway_ticks = 0;
  tl_runaway_dispatch = tl_dispatches - 1;
  tl_runaway_period_ns = period;
  tl_runaway_armed = true;
  if (::timer_settime(timer, 0, &its, nullptr) != 0) {
    log_line("mnv: the runaway clock could not be armed (timer_settime: %s)", std::strerror(errno));
    ::timer_delete(timer);
    tl_runaway_armed = false;
    return;
  }
  timer_ = timer;
  armed_ = true;
}

RunawayTimer::~RunawayTimer() {
  if (!armed_) return;
  ::timer_delete(static_cast<timer_t>(timer_));
  tl_runaway_armed = false;  // (a tick still pending is ignored)
}

const char* describe_signal(int signo) {
  switch (signo) {
    case SIGSEGV: return "SIGSEGV (invalid memory access)";
    case SIGBUS: return "SIGBUS (bus error)";
    case SIGFPE: return "SIGFPE (arithmetic error, e.g. division by zero)";
    case SIGILL: return "SIGILL (illegal instruction)";
    case SIGXCPU: return "SIGXCPU (ran past its CPU time limit without yielding)";
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
