// runtime/process.h — micro-processes: a micro-heap and the micro-threads scheduled in it.
//
// A Process (the seed's struct vk_proc_local) lives inside its own micro-heap together with all of
// its threads, so hiding the heap hides the whole process. It keeps its own run queue and blocked
// queue: dispatch() runs every runnable thread, one after another, until each has blocked,
// paused or ended, or the dispatch's budget is spent; then control goes back to whoever
// dispatched it (the virtual kernel). The kernel holds no pointers into the process while it is
// not running: it reads what the process waits on after dispatch, and hands events back through
// ready().
//
// The budget (the kernel gives kDispatchBudget) makes a busy process take turns with the others
// of its kernel, as Tokio's cooperative budget does for tasks: each thread resumed and each I/O
// op started spends one unit. Once it is spent, the threads still runnable wait for the kernel's
// next pass (Kernel::dispatch queues the process again), and so does a thread whose I/O op
// would have gone ahead without blocking: the op is left to run first when it is resumed. So a connection whose data never runs out (a flood of pipelined lines, a
// full accept queue) or threads that keep readying each other hand the CPU back every few
// hundred steps, and only code that never reaches the runtime can run into the kernel's limit
// on one dispatch (KernelConfig::max_run_ns).
#pragma once

#include <cstddef>
#include <cstdint>

#include "mem/critical_section.h"
#include "mem/heap.h"
#include "runtime/intrusive_list.h"
#include "runtime/thread.h"

namespace mnv {

struct IdleTag {};

// Memory a thread keeps while its process is busy and can give back once the process goes idle
// (a socket's ring buffers: allocating them for every message and freeing them whenever the
// thread blocks costs more than it saves while the connection is active). The owner registers
// the hook with Process::release_when_idle(); the kernel's periodic trim pass calls
// Process::release_idle() on every process that has not run since its previous pass, which runs
// each hook once (and unregisters it) before the heap gives its free pages back. A hook must be
// unlinked (List<IdleHook, IdleTag>::unlink) before its memory is freed.
struct IdleHook : Linked<IdleTag> {
  explicit IdleHook(void (*fn)(IdleHook*)) : release(fn) {}
  ~IdleHook() {
    CriticalSection critical;  // (mem/critical_section.h)
    List<IdleHook, IdleTag>::unlink(this);
  }
  IdleHook(const IdleHook&) = delete;
  IdleHook& operator=(const IdleHook&) = delete;
  void (*release)(IdleHook*);
};

struct ReclaimTag {};

// Something a thread holds outside its process (a slot of shard-wide state) that must be given
// back even when the thread traps: a trapped frame is never destroyed, so its destructors never
// run. The holder registers the hook with Process::on_reclaim() and, when it gives the thing back
// itself, unlinks it (the destructor does); Process::destroy() (the kernel reclaiming the
// process, after a trap or at shutdown) runs each hook still registered, once, while the heap the
// hook lives in is still there.
struct ReclaimHook : Linked<ReclaimTag> {
  explicit ReclaimHook(void (*fn)(ReclaimHook*)) : release(fn) {}
  ~ReclaimHook() {
    CriticalSection critical;  // (mem/critical_section.h)
    List<ReclaimHook, ReclaimTag>::unlink(this);
  }
  ReclaimHook(const ReclaimHook&) = delete;
  ReclaimHook& operator=(const ReclaimHook&) = delete;
  void (*release)(ReclaimHook*);
};

class Process {
 public:
  // Builds a process inside `heap` (which it then owns). Null if the heap cannot hold it.
  static Process* create(Heap* heap);
  // Ends every thread without running handlers (the process is being reclaimed) and frees the
  // process; the heap can then be reset or returned to its pool.
  void destroy();

  Heap& heap() const { return *heap_; }

  // Makes this process current on this OS thread for a scope: micro-threads created inside the
  // scope (by calling their coroutine function) get their frames from this process's heap.
  class Scope {
   public:
    explicit Scope(Process* p) : saved_(tl_current) { tl_current = Current{p, nullptr}; }
    ~Scope() { tl_current = saved_; }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Current saved_;
  };

  // Adopts a new thread and plays it; `message` is what its first listen() returns.
  // Null if `thread` is empty (its frame did not fit: heap().needed_pages() says what would).
  ThreadRef spawn(Thread&& thread, void* message = nullptr);
  // Builds fn(args...) in this process's heap and spawns it (usable from outside any process).
  template <typename F, typename... Args>
  ThreadRef start(F&& fn, Args&&... args) {
    Scope scope(this);
    return spawn(fn(std::forward<Args>(args)...));
  }

  // Registers `h` to run at the next release_idle() (no-op if it already is registered).
  void release_when_idle(IdleHook* h) {
    CriticalSection critical;  // (mem/critical_section.h)
    if (!List<IdleHook, IdleTag>::is_linked(h)) idle_.push_back(h);
  }
  // Registers `h` to run if the process is reclaimed while it is still registered.
  void on_reclaim(ReclaimHook* h) {
    CriticalSection critical;  // (mem/critical_section.h)
    if (!List<ReclaimHook, ReclaimTag>::is_linked(h)) reclaim_.push_back(h);
  }
  // The process is idle: runs and unregisters every registered hook. Called by the kernel
  // (outside dispatch) before it trims the heap.
  void release_idle();

  // What the kernel gives one dispatch: threads resumed plus I/O ops started (see above).
  static constexpr std::uint64_t kDispatchBudget = 128;
  // Runs until no thread is runnable or `budget` is spent (the default: never, for tests and
  // tools that drive a process by hand). Returns the number of threads still alive.
  std::size_t dispatch(std::uint64_t budget = ~std::uint64_t{0});
  // Spends one unit of the running dispatch's budget: false once it is spent (the caller then
  // waits for the kernel's next pass: it requeue()s its thread, which the dispatch leaves).
  bool spend() {
    if (budget_ == 0) return false;
    --budget_;
    return true;
  }

  // Puts a created or paused thread on the run queue (the seed's vk_play); no-op if it is
  // already runnable or running.
  void play(ThreadRef t);
  // Like play(), but it runs next (vk_call's target).
  void play_next(ThreadRef t);
  // A blocked thread's wait is over: it goes to the run queue.
  void ready(ThreadRef t);

  // Threads are runnable (after a dispatch: it spent its budget first).
  bool runnable() const { return !run_.empty(); }
  // A thread of this process trapped (runtime/trap.h): the kernel reclaims the whole process.
  bool faulted() const { return faulted_; }
  // Why the process died, if it did: the trap, or the error that ended its last thread with no
  // handler (e.g. ENOMEM). code == 0 otherwise.
  const Error& death() const { return death_; }
  void note_death(const Error& e) {
    if (death_.code == 0 || e.signo != 0) death_ = e;
  }
  // This process's number in its kernel's process table (0: not in a kernel).
  std::uint32_t kernel_slot() const { return kernel_slot_; }
  void set_kernel_slot(std::uint32_t slot) { kernel_slot_ = slot; }
  std::size_t thread_count() const { return threads_; }
  // Threads waiting on a Block, for the kernel to register with its poller after dispatch.
  List<ThreadState, QueueTag>& blocked() { return blocked_; }

  // Internal: used by the awaitables in exec.h, future.h and raise.h.
  void adopt(ThreadState* t);
  void requeue(ThreadState* t);  // yield: back of the run queue
  void block(ThreadState* t, Block* b);
  void forget(ThreadState* t);   // t has ended

 private:
  Process() = default;
  Heap* heap_ = nullptr;
  List<ThreadState, QueueTag> run_;
  List<ThreadState, QueueTag> blocked_;
  List<ThreadState, AllTag> all_;
  List<IdleHook, IdleTag> idle_;
  List<ReclaimHook, ReclaimTag> reclaim_;
  std::size_t threads_ = 0;
  std::uint32_t kernel_slot_ = 0;
  Error death_;
  bool dispatching_ = false;
  bool faulted_ = false;
  std::uint64_t budget_ = ~std::uint64_t{0};  // of the running dispatch
};

inline Process& this_process() {
  MNV_ASSERT(tl_current.process != nullptr);
  return *tl_current.process;
}

}  // namespace mnv
