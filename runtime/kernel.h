// runtime/kernel.h — the virtual kernel: one per shard (one OS thread).
//
// It owns, in its own kernel heap, the process table, the fd table, the run queue of processes
// and the timers, plus one Poller. Its loop: dispatch every runnable process (each runs all its
// runnable threads), flush what each process now blocks on into the fd table and the poller
// (the seed's dirty fds), wait for events and deadlines, and turn them into runnable threads
// (fresh fds). Processes never hold pointers into kernel memory; they know their slot number.
//
// Each fd a process uses is owned by that process: it is closed, and dropped from the poller,
// when the process is reclaimed, whatever state its threads were in.
//
// A process that dies (a trap, or an error no handler took: ENOMEM...) is reclaimed after that
// dispatch and its death is queued, in kernel memory, for the thread that supervises it
// (runtime/supervise.h), which receives it at its own process's dispatch; with no (live)
// supervisor the kernel logs one line. A normal exit is not a death.
//
// SIGTERM/SIGINT (after install_signal_handlers()): listeners stop, in-flight processes get
// `grace_ns` to finish, then everything is reclaimed and run() returns 0. SIGPIPE is ignored.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "mem/critical_section.h"
#include "mem/heap_pool.h"
#include "mem/kernel_heap.h"
#include "metrics/registry.h"
#include "runtime/kernel_metrics.h"
#include "runtime/block.h"
#include "runtime/clock.h"
#include "runtime/poller.h"
#include "runtime/process.h"
#include "runtime/supervise.h"
#include "runtime/timer_heap.h"

namespace mnv {

// How much of memory a running micro-process can see (DESIGN.md §3 "Isolation and traps").
//  off       all heaps always accessible (traps are still contained)
//  mprotect  a micro-heap is PROT_NONE whenever its process is not running (lazily: a process
//            that runs again next keeps its heap open; at most a few heaps are open at once)
//  strict    mprotect, and the kernel heap is PROT_NONE while a process runs; the few kernel
//            calls a process makes (closing or adopting an fd, starting a process, cancelling a
//            timer) open it for their duration
//  pkeys     memory protection keys instead of mprotect for the kernel heap; refused where the
//            CPU or kernel lacks them
enum class IsolationMode { kOff, kMprotect, kStrict, kPkeys };
const char* isolation_mode_name(IsolationMode mode);

struct KernelConfig {
  PollerKind poller = PollerKind::kIoUring;
  IsolationMode isolation = IsolationMode::kOff;
  std::size_t max_fds_per_process = 0;  // 0: no cap (else adopting more raises EMFILE)
  std::size_t max_fds = 1 << 16;
  std::size_t max_processes = 1 << 16;
  std::size_t max_timers = 1 << 16;
  // Supervision (runtime/supervise.h): threads that can be supervisors at once, and the deaths
  // each can have queued (waiting for its process's dispatch) before further ones are dropped.
  std::size_t max_supervisors = 64;
  std::size_t death_queue = 64;
  std::int64_t grace_ns = 5'000'000'000;       // SIGTERM: time in-flight work gets to finish
  std::int64_t trim_interval_ns = 1'000'000'000;  // idle processes give back unused heap pages
  // A process that runs this much CPU time in one dispatch without returning to the kernel (a
  // thread in a loop that never reaches the runtime: anything that yields or does I/O returns
  // within its dispatch's budget, runtime/process.h) is trapped with SIGXCPU and reclaimed like
  // one that faulted (runtime/trap.h: RunawayTimer); 0: no limit. A dispatch that ran a quarter
  // of it or more is logged as a stall.
  std::int64_t max_run_ns = 0;
  bool exit_when_idle = false;  // run() returns once no process is left (tests, clients)
  // Sockets receive and send through the poller itself where it can (io_uring; see
  // runtime/completion_io.h): no read/write system call per message. The OS then uses
  // micro-heaps (or, with recv_multishot, buffers every process can reach) at any time, so with
  // isolation (IsolationMode other than kOff) it is not used: readv/writev on readiness, made
  // while the heap is open, keep each connection's data inside its own hidden heap.
  bool completion_io = true;
  // With completion_io, sockets receive through one multishot receive per fd into buffers the
  // poller owns (io_uring provided buffers, read in place or copied into their rings while their
  // process runs), instead of one receive per message into the ring itself. Off by default: it
  // measured within noise of the single receives (perf/RESULTS.md), and its buffers are shared,
  // so connections whose processes stop reading hold buffers the others then wait for.
  bool recv_multishot = false;
  // The eventfd the poller's wake() writes, made by whoever forks shards as processes (so other
  // processes can wake this kernel); -1: the poller makes its own (Poller::create).
  int wake_fd = -1;
  // This kernel's (its shard's) metric cells (metrics/registry.h): what the runtime, the layers
  // above and the app's handlers count into, reached on the kernel's thread through
  // Kernel::current()->metrics(). None by default (shard/ places a registry's).
  metrics::ShardCells metrics;
  // The kernel's own series in them (runtime/kernel_metrics.h), or null: it counts none.
  const KernelMetrics* kernel_metrics = nullptr;
};

// Hooks for the layer above the kernel (shard/), called on the kernel's own thread.
struct KernelHooks {
  void* ctx = nullptr;
  // Every loop turn, before runnable processes are dispatched (e.g. drain cross-shard mail).
  void (*on_turn)(void* ctx) = nullptr;
  // Before the poller wait. `will_block`: the wait would sleep. Return false to not sleep
  // (work arrived). Called also when not blocking, so staged work can be published.
  bool (*before_wait)(void* ctx, bool will_block) = nullptr;
  // After a wait for which before_wait returned true with will_block.
  void (*after_sleep)(void* ctx) = nullptr;
};

class Kernel {
 public:
  // Null (with one log line) if the kernel heap, the tables or the poller cannot be set up, or
  // the isolation mode is not available here.
  static std::unique_ptr<Kernel> create(const KernelConfig& config);
  // Whether `mode` can be used on this machine; false with *why if not.
  static bool isolation_available(IsolationMode mode, std::string* why);
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  // The kernel running on this OS thread (inside run(), or while one of its processes runs).
  static Kernel* current();

  // A new, empty micro-process on a heap from `pool`; null when the pool or the process table
  // is full. Threads are added with Process::start/spawn; it is dispatched on the next turn.
  Process* new_process(HeapPool& pool);
  // Builds fn(args...) in a new process and runs it; null if no process could be made or the
  // thread's frame did not fit.
  template <typename F, typename... Args>
  Process* start(HeapPool& pool, F&& fn, Args&&... args) {
    Process* p = new_process(pool);
    if (p == nullptr) return nullptr;
    if (p->start(std::forward<F>(fn), std::forward<Args>(args)...) == nullptr) return nullptr;
    return p;
  }

  // `fd` now belongs to process `p` (the current one if null). False (nothing changed) when the
  // process already holds max_fds_per_process fds.
  bool adopt_fd(int fd, Process* p = nullptr);
  // Supervision; runtime/supervise.h is the thread-side API (supervisor, supervise, reap).
  // Makes thread `t` a supervisor (its heap must be accessible); null when the table is full.
  Supervisor make_supervisor(ThreadRef t);
  // Names `by` the supervisor of the process in `child_slot`, with `note`; a null `by` clears it.
  // False if `by` is stale (then nobody supervises the child).
  bool supervise(std::uint32_t child_slot, Supervisor by, const ChildNote& note);
  // Deaths that reached no supervisor queue because it was full (for tests and counters).
  std::uint64_t deaths_dropped() const { return deaths_dropped_; }
  // Drops fd from the poller and the fd table, then closes it.
  void close_fd(int fd);
  // Marks `p` as a listener: on shutdown it is reclaimed first.
  void mark_listener(Process* p);
  // Readies a blocked thread of the process in `slot` (from hook code, e.g. a reply from
  // another shard; open_process(slot) first if it writes into the process).
  void ready_thread(std::uint32_t slot, ThreadRef t);
  void set_hooks(const KernelHooks& hooks) { hooks_ = hooks; }
  Poller& poller() { return *poller_; }

  // Runs until stop() (or a signal) and every process has ended or the grace period passed.
  // Returns 0.
  int run();
  // Begins shutdown (from this OS thread; signals use the handlers below).
  void stop();
  // Asks for shutdown from any OS thread (wakes the kernel).
  void request_stop();
  bool stopping() const { return stopping_; }

  // SIGTERM/SIGINT stop every kernel; SIGPIPE is ignored. Idempotent.
  static void install_signal_handlers();
  // Whether SIGTERM/SIGINT arrived (after install_signal_handlers()).
  static bool stop_signalled();
  // An eventfd the signal handler also writes, for a thread that waits outside any kernel (the
  // parent of shards run as processes, which passes the stop on); -1: none.
  static void set_stop_signal_fd(int fd);

  // This kernel's metric cells (KernelConfig::metrics; placed() false when it has none). Only
  // this kernel's thread writes through them.
  const metrics::ShardCells& metrics() const { return config_.metrics; }

  PollerKind poller_kind() const { return poller_->kind(); }
  IsolationMode isolation() const { return config_.isolation; }
  // Makes `slot`'s heap accessible (isolation modes) — for code that must reach into a
  // process outside its dispatch, e.g. a cross-shard reply.
  void open_process(std::uint32_t slot);
  // The kernel heap's segment (to bind it to a NUMA node).
  const Segment& heap_segment() const { return heap_.segment(); }
  // The kernel's own tables (for tests that check strict isolation hides them).
  const void* tables() const { return fds_; }
  // The poller's completion-mode I/O when the config allows it and the poller has it; else null.
  CompletionIo* completion_io() const { return completion_io_; }
  std::size_t process_count() const { return live_; }
  std::int64_t now_ns() const { return now_; }
  std::uint64_t turns() const { return turns_; }
  // Idle processes the trim passes have trimmed so far (readable from any thread: tests wait on
  // it instead of sleeping).
  std::uint64_t idle_trims() const { return idle_trims_.load(std::memory_order_acquire); }

  // A thread stops waiting on `b` before its deadline (readied, raised into, or ended): the
  // kernel running on this OS thread drops the timer it armed for it. No-op when none is armed.
  static void drop_deadline(Block* b) {
    if (b != nullptr && b->timer != 0) drop_timer(b);  // (inline: most waits have no deadline)
  }
  // Bytes a socket moved between its fd and its rings with readv/writev (net/socket.cc; the
  // poller counts its completion-mode transfers), counted by the kernel running on this thread
  // (KernelConfig::kernel_metrics); no-op outside a kernel.
  static void count_bytes_in(std::size_t n);
  static void count_bytes_out(std::size_t n);

  // Internal (runtime/supervise.h): the thread holding supervisor entry `id` ended.
  void release_supervisor(std::uint32_t id);

  // Opens the kernel heap for a kernel call made from inside a process in strict mode, and keeps
  // a runaway trap (max_run_ns) from cutting the call short.
  class Gate {
   public:
    explicit Gate(Kernel* k);
    ~Gate();
    Gate(const Gate&) = delete;
    Gate& operator=(const Gate&) = delete;

   private:
    CriticalSection critical_;
    Kernel* k_;
    bool opened_;
  };

 private:
  struct Slot;
  struct FdEntry;
  struct SupervisorEntry;
  explicit Kernel(const KernelConfig& config);
  bool init();
  void enqueue(std::uint32_t slot);
  void dispatch(std::uint32_t slot);
  void flush(std::uint32_t slot);
  void reclaim(std::uint32_t slot);
  void on_fd_event(int fd, std::uint32_t events);
  void on_timer(std::uint64_t cookie, std::uint32_t id);
  void deliver(std::uint32_t slot);
  void report_stall(std::uint32_t slot);  // after a dispatch (KernelConfig::max_run_ns)
  void cancel_timer(std::uint32_t timer);
  static void drop_timer(Block* b);
  void close_heap(std::uint32_t slot);
  void protect_kernel(bool hide);
  void trim_idle();
  void begin_shutdown();
  void own(int fd, std::uint32_t slot);
  void disown(int fd);
  void report_death(std::uint32_t slot);
  // Adds what the counts below and the poller's gained since the last call to the cells.
  void publish_metrics();
  void count_heap_pages(std::uint32_t slot);  // after the process in `slot` ran or was trimmed
  // The live supervisor entry of process `slot` (null: none, or it has ended).
  SupervisorEntry* supervisor_of(std::uint32_t slot);
  // `slot` stops counting as its supervisor's child (it ended, or is given another).
  void unlink_supervisor(std::uint32_t slot);
  bool deliver_deaths(std::uint32_t slot);

  KernelConfig config_;
  KernelHooks hooks_;
  KernelHeap heap_;
  TimerHeap timers_;
  std::unique_ptr<Poller> poller_;
  CompletionIo* completion_io_ = nullptr;
  Slot* slots_ = nullptr;
  FdEntry* fds_ = nullptr;
  std::uint32_t* runq_ = nullptr;   // ring of slot numbers; each slot queued at most once
  std::size_t runq_head_ = 0;
  std::size_t runq_len_ = 0;
  std::uint32_t free_slot_ = 0;      // free list through Slot::next_free (0 = none; slots are 1-based)
  std::uint32_t slots_used_ = 0;     // slots 1..slots_used_ have been handed out at least once
  std::uint64_t trim_turn_ = 0;      // loop turn of the previous trim pass
  // Isolation: heaps currently accessible (at most kMaxOpen; normally the one running).
  static constexpr int kMaxOpen = 8;
  std::uint32_t open_[kMaxOpen] = {};
  int open_count_ = 0;
  bool in_process_ = false;          // a process is running (strict: the kernel heap is hidden)
  std::uint32_t running_slot_ = 0;   // that process
  // Fired timers waiting for their process's dispatch: a pool linked per slot.
  struct Fired {
    std::uint64_t cookie;
    std::uint32_t id;
    std::uint32_t next;  // index + 1; 0 = end
  };
  Fired* fired_ = nullptr;
  std::uint32_t fired_free_ = 0;     // index + 1 of the first free entry
  std::uint32_t fired_used_ = 0;     // entries handed out at least once
  // Supervision: entries (1-based, linked per supervising process), their death rings
  // (death_queue records each) and each process's note from its supervisor.
  SupervisorEntry* sups_ = nullptr;
  Death* death_rings_ = nullptr;
  ChildNote* notes_ = nullptr;
  std::uint32_t sup_free_ = 0;       // free list through SupervisorEntry::next (0 = none)
  std::uint32_t sups_used_ = 0;
  std::uint64_t deaths_dropped_ = 0;
  int pkey_ = -1;
  std::size_t live_ = 0;
  std::int64_t now_ = 0;
  std::int64_t next_trim_ = 0;
  std::int64_t stop_deadline_ = 0;
  std::uint64_t turns_ = 0;
  std::uint64_t dispatches_ = 0;
  // For the metrics (KernelConfig::kernel_metrics): counted here, published once per turn.
  std::uint64_t bytes_in_ = 0, bytes_out_ = 0, reclaimed_ = 0;
  std::uint64_t traps_[KernelMetrics::kTrapKinds] = {};
  std::int64_t heap_pages_ = 0;
  static constexpr std::int64_t kPublishNs = 1'000'000;
  std::int64_t publish_at_ = INT64_MAX;  // when the counts are next added to the cells
  struct Published {
    std::uint64_t turns = 0, dispatches = 0, submitted = 0, completed = 0, bytes_in = 0, bytes_out = 0, reclaimed = 0;
    std::uint64_t traps[KernelMetrics::kTrapKinds] = {};
  } published_;
  std::atomic<std::uint64_t> idle_trims_{0};
  bool stopping_ = false;
  std::atomic<bool> stop_requested_{false};
};

}  // namespace mnv
