// shard/shard.h — shards: one virtual kernel per chosen core, pinned, and the calls between them.
//
// A ShardSet starts one OS thread (or process: below) per shard (named "shard-K", in its comm),
// pins it to its CPU (shard/topology.h), and runs a Kernel on it. Everything a shard owns — its
// kernel, kernel heap, heap pools, io_uring ring — is created and touched only by its own
// thread; shards share nothing but the Mailboxes (shard/mailbox.h), drained by the kernel's loop
// hooks each turn and published once per turn, with a sleeping shard woken through its poller.
//
// Start-up is ordered and all-or-nothing: shard K runs its `init` after shard K-1's returned (so
// shard 0 can bind port 0 and the others SO_REUSEPORT the same port); if any shard fails to pin,
// create its kernel or init, every shard is stopped and start() returns the reason.
//
// Cross-shard calls: a handler registered for a message kind runs on the target shard's thread,
// outside any micro-thread, and must not block; a micro-thread calls it with
// `co_await cross_call(shard, kind, payload, deadline)` (shard/cross_call.h).
//
// ShardSet is the interface; start() picks one of its two launchers (AffinityConfig::shard_mode):
// shard/shard_threads.h (threads of this process) or shard/shard_processes.h (a process each).
// With isolation, every mprotect that takes access away must reach the TLB of every CPU running
// the same address space: in one process with several busy shard threads, each such call sends a
// shootdown IPI to every other shard's CPU and waits for it (perf/protect_bench: ~1 µs alone,
// ~6.5 µs with a busy sibling thread on this VM). So shards can run as processes instead, one
// address space each. `auto` picks processes when isolation is mprotect or strict and there are
// several shards; threads otherwise. What changes for an app with processes:
//   * shards share only shared mappings made before start() (SharedObject) and the mailboxes;
//     what one shard's init leaves in ordinary memory the next shard does not see, and fd
//     numbers mean nothing in another shard (post_fd() hands an fd over, in either mode);
//   * shard(i) in the caller's process is a shard that never runs there: report from `fini`;
//   * a shard that dies (a trap in the kernel itself aborts it) takes only its own connections
//     with it: the others keep serving, and wait() (which must be running) logs it and starts
//     it again, as nginx's master does its workers (at most kMaxRestarts times a minute per
//     shard; then it stays down). Every call in flight to it ends with ECONNRESET; wait()
//     returns 1 at the end if a shard stayed down;
//   * a shard whose loop has not turned for ShardSetOptions::restart_stuck_ms while it was not
//     asleep (a micro-thread that never yields holds its whole shard) is killed by wait() and
//     restarted as above;
//   * request_stop() reaches every shard process; a shard whose parent dies is killed with it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/kernel.h"
#include "shard/affinity_config.h"
#include "shard/mailbox.h"
#include "shard/shard_metrics.h"
#include "shard/topology.h"

namespace mnv {

class ShardSet;
class CrossCallOp;

// Runs on the target shard's kernel thread: fills *reply (kind and id are set by the shard).
using CrossHandler = void (*)(const ShardMessage& request, ShardMessage* reply, void* ctx);
// Runs on the target shard's kernel thread for a one-way message posted to it.
using PostHandler = void (*)(const ShardMessage& message, void* ctx);

class Shard {
 public:
  static constexpr std::uint32_t kReplyBit = 0x8000'0000u;
  static constexpr std::uint32_t kNoHandlerBit = 0x4000'0000u;  // in a reply: nobody handles it
  static constexpr std::uint32_t kPostBit = 0x2000'0000u;       // a one-way message
  static constexpr std::uint32_t kFdBit = 0x1000'0000u;         // it carries an fd (post_fd)
  static constexpr std::size_t kMaxKinds = 64;
  static constexpr std::size_t kMaxCalls = 4096;  // cross-shard calls in flight from one shard

  // The shard whose kernel thread this is (null outside shard threads).
  static Shard* current();

  std::size_t index() const { return index_; }
  int cpu() const { return cpu_; }
  Kernel& kernel() const { return *kernel_; }
  ShardSet& set() const { return *set_; }
  // This shard's metric cells (ShardSetOptions::metrics' shard(index()); placed() is false
  // without a registry). Write them on this shard's thread only: relaxed stores, no locks, no
  // allocation. From a handler: Shard::current()->metrics(), or Kernel::current()->metrics().
  const metrics::ShardCells& metrics() const { return kernel_->metrics(); }

  // Registers what this shard runs for requests / posts of `kind` (< kMaxKinds).
  void handle(std::uint32_t kind, CrossHandler fn, void* ctx);
  void on_post(std::uint32_t kind, PostHandler fn, void* ctx);
  // Sends a one-way message of `kind` to shard `to`; published at the end of this loop turn.
  // False if the ring is full (the caller keeps the work).
  bool post(std::size_t to, std::uint32_t kind, const void* payload, std::size_t len);
  // The same, handing `fd` over with it: the handler gets it, open in its own process, as
  // posted_fd(message) and owns it from then on. With threads the number is passed as is; with
  // processes the fd and the message travel together over a Unix socket (SCM_RIGHTS; the
  // mailbox carries only a wake-up), and this process's copy is closed. False if it could not
  // be sent (the caller keeps the fd).
  bool post_fd(std::size_t to, std::uint32_t kind, int fd, const void* payload, std::size_t len);
  // The fd a message from post_fd() carries, or -1.
  static int posted_fd(const ShardMessage& m) { return (m.kind & kFdBit) ? static_cast<int>(m.id) : -1; }

  // Internal, for CrossCallOp: registers a call (0 when kMaxCalls are in flight) and stages it.
  std::uint32_t begin_call(ThreadRef caller, CrossCallOp* op, std::size_t to, const ShardMessage& request);
  void cancel_call(std::uint32_t call);
  // Internal: runs a request of this shard's own handlers synchronously (a call to oneself).
  bool run_local(const ShardMessage& request, ShardMessage* reply);

  // Internal, for the launchers. Runs the post handler of a message that arrived with its fd
  // (or closes the fd when nobody takes it).
  void deliver_post(const ShardMessage& m);
  // Ends every call in flight to shard `to` with ECONNRESET (its process died).
  void fail_calls_to(std::size_t to);
  // Before a restarted shard runs: start this incarnation's call generations apart from the
  // last one's, whose late replies may still be in a ring.
  void seed_calls(std::uint32_t incarnation);

  struct Stats {
    std::uint64_t calls = 0, replies = 0, requests_served = 0, backlogged = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  friend class ShardSet;
  // What the shard ended with: the kernel ran (and returned), or start-up failed or was called off.
  enum class Outcome { kRan, kNotStarted };
  struct Call {
    ThreadRef caller;
    CrossCallOp* op;
    std::uint32_t slot;  // the caller's process (its heap may be hidden when the reply comes)
    std::uint32_t gen;
    std::uint32_t next_free;
    std::uint32_t to;
    bool live;
    bool sent;
    std::int64_t started_ns;  // (metrics: the call's latency)
  };
  Shard(ShardSet* set, std::size_t index, int cpu);
  Outcome run(const Topology& topology);  // the thread's (or the shard process's) body
  bool set_up(const Topology& topology, std::string* error);  // pin, kernel, hooks
  // Call slot i: ends the call with `reply` or `error` and readies its caller; frees the slot.
  void complete_call(std::uint32_t i, const ShardMessage& reply, int error);
  void free_call(std::uint32_t i);
  void on_turn();
  bool before_wait(bool will_block);
  void deliver(const ShardMessage& m);
  ShardMessage make_post(std::size_t to, std::uint32_t kind, const void* payload, std::size_t len) const;
  void retry_backlog();
  // Mailboxes::send and receive, counted (ShardSetOptions::shard_metrics).
  bool send(std::size_t to, const ShardMessage& m);
  std::size_t receive(ShardMessage* out, std::size_t max);

  ShardSet* set_;
  std::size_t index_;
  int cpu_;
  std::unique_ptr<Kernel> kernel_;
  struct Handler {
    CrossHandler call = nullptr;
    PostHandler post = nullptr;
    void* ctx = nullptr;
  };
  Handler handlers_[kMaxKinds];
  bool stop_told_ = false;  // ShardSetOptions::on_stop ran
  std::vector<Call> calls_;               // fixed size kMaxCalls + 1; [0] unused
  std::uint32_t free_call_ = 0;
  std::vector<ShardMessage> requests_;    // calls whose send was refused (FIFO ring)
  std::vector<std::size_t> request_to_;
  std::size_t backlog_head_ = 0, backlog_len_ = 0;
  std::vector<ShardMessage> outbox_;      // replies whose send was refused (FIFO ring)
  std::size_t outbox_head_ = 0, outbox_len_ = 0;
  Stats stats_;
};

struct ShardSetOptions {
  AffinityConfig affinity;             // shard count, CPUs, poller, grace
  std::size_t mailbox_capacity = 1024;  // messages per ring (power of two)
  std::size_t max_fds = 0;              // per kernel; 0: from RLIMIT_NOFILE
  bool completion_io = true;            // KernelConfig::completion_io
  bool recv_multishot = false;          // KernelConfig::recv_multishot
  // The registry whose cells the shards write (KernelConfig::metrics: shard i gets shard(i)),
  // placed before start() — with shards as processes in a SharedRegion (shard/shared_memory.h),
  // so a reader in any process sees every shard. Null: shards have no metric cells.
  const metrics::Registry* metrics = nullptr;
  // The kernels' own series in it (KernelConfig::kernel_metrics), or null: kernels count none.
  const KernelMetrics* kernel_metrics = nullptr;
  // The shards' mailbox series in it, or null: shards count none.
  const ShardMetrics* shard_metrics = nullptr;
  // KernelConfig::max_run_ns, in ms: a micro-process that runs this much CPU time without
  // returning to its kernel is trapped (SIGXCPU) and reclaimed; its shard goes on. 0: no limit.
  std::int64_t max_run_ms = 1'000;
  // Runs on each shard's thread in shard order before its kernel runs; false (with *error)
  // aborts the whole start.
  std::function<bool(Shard&, std::string*)> init;
  // Runs on each shard's thread once, in the first loop turn after its kernel began stopping
  // (SIGTERM, request_stop()), outside any dispatch: where a shard drains its servers.
  std::function<void(Shard&)> on_stop;
  // Runs on each shard's thread after its kernel returned, before the kernel is destroyed: where
  // a shard reports what it did (with processes, nothing else it knows reaches the caller).
  std::function<void(Shard&)> fini;
  // Processes: runs in the caller's process, on the thread in wait(), each time a shard process
  // dies (`how`: "died of SIGKILL (Killed)", ...) once wait() has decided whether it is
  // restarted (after it logged it).
  std::function<void(std::size_t shard, const std::string& how, bool restarted)> on_death;
  // Processes: a shard whose loop has not turned for this long while it was not asleep (a
  // hang in the runtime, a micro-thread blocked in a system call, or one that never yields when
  // max_run_ms is off or longer) is killed by wait() and, like any dead shard, started again;
  // 0: never.
  std::int64_t restart_stuck_ms = 10'000;
  // Processes: how long a shard process may take to start (pin, kernel, `init`) before it is
  // killed and its start has failed: at start() (which then fails, stopping the others) and at
  // a restart (the shard stays down; the others go on, and wait() keeps supervising them and
  // still passes SIGTERM on). A stop requested meanwhile ends the wait at once. 0: no limit.
  std::int64_t start_timeout_ms = 30'000;
};

// The shard launcher's interface: shards as threads (shard/shard_threads.h) or as processes
// (shard/shard_processes.h).
class ShardSet {
 public:
  // Starts every shard with the launcher runs_as_processes() names; null with *error when any
  // shard cannot start (the others are stopped).
  static std::unique_ptr<ShardSet> start(const Topology& topology, ShardSetOptions options, std::string* error);
  virtual ~ShardSet();

  // Processes: a shard that dies is started again by wait() up to kMaxRestarts times within
  // kRestartWindowNs; the next death within it leaves it down.
  static constexpr int kMaxRestarts = 5;
  static constexpr std::int64_t kRestartWindowNs = 60'000'000'000;

  // Whether shards with this config run as processes (ShardMode::kAuto resolved).
  static bool runs_as_processes(const AffinityConfig& affinity);

  // Blocks until every shard's kernel returned (SIGTERM/SIGINT, or request_stop()). Returns 0,
  // or 1 if a shard process died and was not started again (each death is logged).
  virtual int wait() = 0;
  // Asks every shard to stop (any thread).
  virtual void request_stop() = 0;
  virtual bool processes() const = 0;
  // What tells a stuck shard from a busy one (any thread): how many times shard i's loop has
  // turned, and whether it is idle (asleep in its poller, or its loop has returned). A shard
  // that is not idle and whose loop does not turn is stuck in what it runs.
  virtual std::uint64_t loop_turns(std::size_t i) const = 0;
  virtual bool loop_idle(std::size_t i) const = 0;

  std::size_t size() const { return shards_.size(); }
  // With processes, shard i runs in its own process: this one never ran (no kernel).
  Shard& shard(std::size_t i) const { return *shards_[i]; }
  Mailboxes& mailboxes() { return mailboxes_; }
  const ShardSetOptions& options() const { return options_; }

 protected:
  explicit ShardSet(ShardSetOptions options);
  // What a launcher does for its shards, called by Shard on the shard's own thread:
  // start-up steps, in order: kernel config, then (kernel made) attach, then report after
  // `init`, wait for every shard's report (await_go), before_run, and each loop turn.
  virtual void configure_kernel(std::size_t index, KernelConfig* config) = 0;
  virtual void attach(Shard& shard) = 0;
  virtual void report(std::size_t index, bool ok, const std::string& error) = 0;
  virtual bool await_turn(std::size_t index) = 0;  // this shard's init may run
  virtual bool await_go() = 0;                     // every shard started: run the kernel
  virtual void before_run(Shard& shard) = 0;
  virtual void on_turn(Shard& shard) = 0;
  virtual void loop_ended(Shard& shard) = 0;  // its kernel's run() returned
  // Shard::post_fd's transport; and what a shard does with a kFdBit wake-up (processes).
  virtual bool send_fd(std::size_t from, std::size_t to, ShardMessage message, int fd) = 0;
  virtual void receive_fds(Shard& shard) = 0;
  // Sets or clears shard.kernel_ (other threads may read it meanwhile).
  virtual void swap_kernel(Shard& shard, std::unique_ptr<Kernel>& kernel) = 0;

  // For the launchers: make the shards; run one; its kernel slot.
  void make_shards();
  // Runs shard's body: true if its kernel ran, false if start-up failed or was called off.
  static bool run_shard(Shard& shard, const Topology& topology) { return shard.run(topology) == Shard::Outcome::kRan; }
  static std::unique_ptr<Kernel>& kernel_of(Shard& shard) { return shard.kernel_; }

  ShardSetOptions options_;
  Mailboxes mailboxes_;
  std::vector<std::unique_ptr<Shard>> shards_;

 private:
  friend class Shard;
};

}  // namespace mnv
