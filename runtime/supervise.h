// runtime/supervise.h — supervision: a micro-thread is told when the processes it supervises die.
//
// A process dies when one of its threads traps (SIGSEGV, SIGBUS, SIGFPE, SIGILL: EFAULT with the
// signal and address) or when its last thread ended on an error no handler took (ENOMEM with the
// pages its heap would have needed, ...). A normal exit is not a death. The kernel reclaims a dead
// process at once (heap and fds); what its supervisor learns is a Death record:
//
//   mnv::Thread watchdog(Stats* stats) {
//     mnv::Supervisor me = mnv::supervisor();            // this thread now receives deaths
//     mnv::Process* c = mnv::Kernel::current()->start(pool, worker, job);
//     mnv::supervise(c, me, mnv::ChildNote::of(job->id));  // c's death comes to me, with this note
//     for (;;) {
//       mnv::Death d = co_await mnv::reap();             // sleeps until a child dies
//       char buf[256];
//       log_line("job %lu died: %s", d.note.as<std::uint64_t>(), d.error.describe(buf, sizeof buf));
//       stats->deaths += 1 + d.dropped;                  // + deaths lost to a full queue
//     }
//   }
//
//   Supervisor supervisor(t)          makes thread t (default: the calling thread) a supervisor
//                                     and returns its handle, a plain value usable by any code
//                                     of this shard (a null handle when the kernel's table is full)
//   supervise(child, by, note)         names `by` the supervisor of process `child` (at creation or
//                                     later; replaces any earlier one); `note` comes back in the
//                                     Death. A null `by` takes the supervision away.
//   Death d = co_await reap()         the next death of a process this thread supervises; an
//                                     empty Death (false) once the kernel is stopping (SIGTERM)
//                                     and no process it supervises is left: time to end
//   Death d = co_await reap_until(ns) the same, or an empty Death (false) at the deadline
//
// Deaths are queued in the kernel's own memory (per supervisor, KernelConfig::death_queue
// records, allocated up front) and handed over when the supervisor's process is next dispatched,
// so the kernel never touches a hidden heap (isolation modes) and never waits for a supervisor.
// When the queue is full further deaths are counted, not kept: the next Death delivered says
// how many were dropped. When the supervising thread ends (or its process dies or exits), the
// deaths of its children, and those still queued for it, fall back to the kernel's default: one
// log line each. Nothing here allocates from the global heap.
#pragma once

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <type_traits>

#include "runtime/block.h"
#include "runtime/error.h"
#include "runtime/thread.h"

namespace mnv {

class Process;

// What a supervisor attaches to a child (e.g. the connection's peer address), handed back with
// its death. A small value, copied: it outlives the child's heap.
struct ChildNote {
  static constexpr std::size_t kBytes = 32;
  alignas(8) unsigned char bytes[kBytes] = {};

  template <typename T>
  static ChildNote of(const T& value) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= kBytes, "a ChildNote holds up to 32 bytes of plain data");
    ChildNote t;
    std::memcpy(t.bytes, &value, sizeof value);
    return t;
  }
  template <typename T>
  T as() const {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= kBytes, "a ChildNote holds up to 32 bytes of plain data");
    T value;
    std::memcpy(&value, bytes, sizeof value);
    return value;
  }
};

// One child's death, as its supervisor receives it.
struct Death {
  std::uint32_t slot = 0;     // the child's process number in this kernel (0: no death, e.g. a
                              // reap_until() that reached its deadline, or a kernel stopping
                              // with nothing left to supervise)
  Error error;                // EFAULT with signo/address for a trap; ENOMEM with needed_pages;
                              // or the error that ended its last thread. error.describe() gives
                              // the one-line description.
  ChildNote note;             // what supervise() attached
  std::uint64_t dropped = 0;  // deaths of this supervisor's children lost (its queue was full)
                              // since the previous Death it received

  explicit operator bool() const { return slot != 0; }
};

// A supervising thread, as the kernel knows it: a plain value (no pointer into any heap), valid
// until that thread ends. A stale or null handle names nobody.
struct Supervisor {
  std::uint32_t id = 0;   // 0: none
  std::uint32_t gen = 0;  // the kernel entry's generation when it was handed out
  explicit operator bool() const { return id != 0; }
};

// These two act on the kernel running on this OS thread (Kernel::current(): inside its run(),
// from micro-threads or hooks); before run(), call Kernel::make_supervisor / Kernel::supervise.
//
// Makes `t` (default: the calling thread) a supervisor. `t`'s heap must be accessible: call it
// from t's own process, or right after creating t. Idempotent. Null when no kernel runs here or
// its supervisor table is full (one log line).
Supervisor supervisor(ThreadRef t = nullptr);
// Names `by` the supervisor of `child` (the process number, or a process whose heap is
// accessible, e.g. just created). False (nothing supervises it then) if `by` is stale or the
// child is gone.
bool supervise(std::uint32_t child_slot, Supervisor by, const ChildNote& note = {});
bool supervise(Process* child, Supervisor by, const ChildNote& note = {});

// What a thread waiting in reap() blocks on; the kernel fills `death` when it hands one over.
struct DeathWait : Block {
  Death death;
};

class [[nodiscard]] ReapAwaiter {
 public:
  ReapAwaiter(std::int64_t deadline_ns, std::source_location where) : where_(where) { wait_.deadline_ns = deadline_ns; }
  ReapAwaiter(const ReapAwaiter&) = delete;
  ReapAwaiter& operator=(const ReapAwaiter&) = delete;
  // Always suspends: deaths wait in kernel memory, which a running process does not read.
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) noexcept;
  Death await_resume() const noexcept {
    this_thread().reaping = false;  // (until now the kernel knew a death handed over was unread)
    return wait_.death;
  }

 private:
  DeathWait wait_;
  std::source_location where_;
};

// The next death of a process this thread supervises (the thread becomes a supervisor if it was
// not one; ENOSPC is raised when the kernel's supervisor table is full).
inline ReapAwaiter reap(std::source_location where = std::source_location::current()) { return ReapAwaiter(0, where); }
// As reap(), or an empty Death at the CLOCK_MONOTONIC deadline.
inline ReapAwaiter reap_until(std::int64_t deadline_ns, std::source_location where = std::source_location::current()) {
  return ReapAwaiter(deadline_ns, where);
}

// Internal: thread `t` that supervised through kernel entry `id` has ended (runtime/process.cc).
void release_kernel_supervisor(std::uint32_t id);

}  // namespace mnv
