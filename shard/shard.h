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
// Threads or processes (AffinityConfig::shard_mode). With isolation, every mprotect that takes
// access away must reach the TLB of every CPU running the same address space: in one process
// with several busy shard threads, each such call sends a shootdown IPI to every other shard's
// CPU and waits for it (perf/protect_bench: ~1 µs alone, ~6.5 µs with a busy sibling thread on
// this VM). So shards can run as processes instead, one address space each, forked in shard
// order by start(): the same protocol (pin, kernel, init in shard order, all-or-nothing, then
// run) reported through a pipe per shard, with the mailboxes in a shared mapping made before the
// forks (shard/shared_memory.h) and each shard's poller woken through an eventfd made before
// them too. `auto` picks processes when isolation is mprotect or strict and there are several
// shards; threads otherwise. What changes for an app with processes:
//   * shards share only shared mappings made before start() (SharedObject) and the mailboxes;
//     what one shard's init leaves in ordinary memory the next shard does not see, and fd
//     numbers mean nothing in another shard (post_fd() hands an fd over, in either mode);
//   * shard(i) in the caller's process is a shard that never runs there: report from `fini`;
//   * a shard that dies (a trap in the kernel itself aborts it) takes only its own connections
//     with it: the others keep serving, and wait() (which must be running) logs it and starts
//     it again, as nginx's master does its workers: a fresh fork of the caller that pins, makes
//     its kernel and runs `init` again (at most kMaxRestarts times a minute per shard; then it
//     stays down). Whatever it had staged in the mailboxes and not published is dropped; every
//     call in flight to it ends with ECONNRESET once the parent has seen the death (the others
//     are woken for it), deadline or not. wait() returns 1 at the end
//     if a shard stayed down;
//   * a watchdog (ShardSetOptions::watchdog_ms) in wait() kills a shard whose loop has not
//     turned for that long while it was not asleep in its poller (a micro-thread that never
//     yields holds its whole shard), which is then restarted as above;
//   * the caller's SIGTERM/SIGINT (install_signal_handlers) is passed on to every shard, and a
//     shard whose parent dies is sent SIGTERM.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/kernel.h"
#include "shard/affinity_config.h"
#include "shard/mailbox.h"
#include "shard/shared_memory.h"
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
  };
  Shard(ShardSet* set, std::size_t index, int cpu);
  Outcome run(const Topology& topology);  // the thread's (or the shard process's) body
  bool set_up(const Topology& topology, std::string* error);  // pin, kernel, hooks
  void seed_calls(std::uint32_t incarnation);  // (processes) before a restarted shard runs
  void fail_calls_to_the_dead();  // (processes) calls to a shard that died: ECONNRESET
  // Call slot i: ends the call with `reply` or `error` and readies its caller; frees the slot.
  void complete_call(std::uint32_t i, const ShardMessage& reply, int error);
  void free_call(std::uint32_t i);
  void swap_kernel(std::unique_ptr<Kernel>& kernel);  // kernel_ <-> kernel (threads: under the set's mutex)
  void on_turn();
  bool before_wait(bool will_block);
  void deliver(const ShardMessage& m);
  ShardMessage make_post(std::size_t to, std::uint32_t kind, const void* payload, std::size_t len) const;
  void receive_fds();  // (processes) every message waiting with its fd on this shard's socket
  void retry_backlog();

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
  bool stop_seen_ = false;  // (processes) the set's stop flag was passed to the kernel
  std::uint32_t deaths_seen_ = 0;              // (processes) ShardSet::Control::deaths, last seen
  std::vector<std::uint32_t> died_seen_;       // (processes) ShardSet::died_[j], last seen
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
  // KernelConfig::max_run_ns, in ms: a micro-process that runs this much CPU time without
  // returning to its kernel is trapped (SIGXCPU) and reclaimed; its shard goes on. 0: no limit.
  std::int64_t max_run_ms = 1'000;
  // Runs on each shard's thread in shard order before its kernel runs; false (with *error)
  // aborts the whole start.
  std::function<bool(Shard&, std::string*)> init;
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
  // 0: no watchdog.
  std::int64_t watchdog_ms = 10'000;
  // Processes: how long a shard process may take to start (pin, kernel, `init`) before it is
  // killed and its start has failed: at start() (which then fails, stopping the others) and at
  // a restart (the shard stays down; the others go on, and wait() keeps supervising them and
  // still passes SIGTERM on). A stop requested meanwhile ends the wait at once. 0: no limit.
  std::int64_t start_timeout_ms = 30'000;
};

class ShardSet {
 public:
  // Starts every shard; null with *error when any shard cannot start (the others are stopped).
  static std::unique_ptr<ShardSet> start(const Topology& topology, ShardSetOptions options, std::string* error);
  ~ShardSet();

  // Processes: a shard that dies is started again by wait() up to kMaxRestarts times within
  // kRestartWindowNs; the next death within it leaves it down.
  static constexpr int kMaxRestarts = 5;
  static constexpr std::int64_t kRestartWindowNs = 60'000'000'000;

  // Whether shards with this config run as processes (ShardMode::kAuto resolved).
  static bool runs_as_processes(const AffinityConfig& affinity);

  // Blocks until every shard's kernel returned (SIGTERM/SIGINT, or request_stop()). Returns 0,
  // or 1 if a shard process died and was not started again (each death is logged).
  int wait();
  // Asks every shard to stop (any thread).
  void request_stop();

  bool processes() const { return processes_; }
  std::size_t size() const { return shards_.size(); }
  // With processes, shard i runs in its own process: this one never ran (no kernel).
  Shard& shard(std::size_t i) const { return *shards_[i]; }
  Mailboxes& mailboxes() { return mailboxes_; }
  const ShardSetOptions& options() const { return options_; }

 private:
  friend class Shard;
  ShardSet(ShardSetOptions options);
  void report(std::size_t index, bool ok, const std::string& error);
  // Start-up steps of a shard, for threads (under mu_) or in a shard process (the pipes).
  bool await_turn(std::size_t index);  // this shard's init may run (the previous one's is done)
  bool await_go();                     // every shard started: run the kernel

  // Processes (shard/shard_processes.cc). In the caller: start, stop, wait for, and close the
  // shard processes; in a shard's process: its report and its go.
  bool start_processes(const Topology& topology, std::string* error);
  void stop_processes();
  int wait_processes();
  void close_processes();
  void report_to_parent(bool ok, const std::string& error);
  bool await_go_from_parent();
  bool send_fd(std::size_t to, const ShardMessage& message, int fd);  // for Shard::post_fd
  // In the caller: fork shard i and wait for its report; stop what was started; restart shard
  // i after it died (false: not restarted, and why is logged).
  bool fork_shard(std::size_t i, std::string* error);
  // Shard i's start-up report (or EOF: it died first) into buf: its length, or -1 when it took
  // longer than start_timeout_ms or a stop was requested meanwhile (*why says which).
  ssize_t await_report(std::size_t i, char* buf, std::size_t len, std::string* why);
  void call_off_start();
  bool restart(std::size_t i, int status);  // try_restart(), then on_death
  bool try_restart(std::size_t i, const std::string& how);
  bool stop_requested() const { return control_ != nullptr && control_->stop.load(std::memory_order_acquire); }

  ShardSetOptions options_;
  bool processes_ = false;
  Mailboxes mailboxes_;
  // Processes: each shard's wake eventfd (its poller's wake()); per child, its pid, a pidfd
  // (readable once it exited), and the parent's ends of its start-up pipes; the eventfd the
  // SIGTERM/SIGINT handler writes.
  std::vector<int> wake_fds_;
  // Processes: per shard, a Unix seqpacket pair over which fds are posted to it ([0]: it reads;
  // [1]: the others send).
  std::vector<std::array<int, 2>> fd_sockets_;
  struct Child {
    int pid = -1;
    int pidfd = -1;
    int report_fd = -1;  // read: the child's start-up report
    int go_fd = -1;      // write: 'g' to run; closed: call it off
    bool reaped = false;
    std::uint32_t incarnation = 0;  // forks of this shard so far
    int restarts = 0;               // within the window that began at window_ns
    std::int64_t window_ns = 0;
    std::uint64_t last_turns = 0;   // watchdog: its loop turns when last seen to progress,
    std::int64_t progress_ns = 0;   // and when that was
    bool watchdog_killed = false;
  };
  // Processes: what the shard processes and the parent share, in one mapping made before the
  // forks. Written by the parent, read by every shard each loop turn: the stop flag, and the
  // deaths wait() has seen (a shard then fails its calls to one that died: ECONNRESET), with
  // per shard how many times it died. Written by each shard every turn, read by the watchdog in
  // wait(): its loop-turn count, one cache line per shard.
  struct alignas(kCacheLine) Control {
    std::atomic<bool> stop{false};
    std::atomic<std::uint32_t> deaths{0};
  };
  struct alignas(kCacheLine) Beat {
    std::atomic<std::uint64_t> turns{0};
  };
  std::unique_ptr<SharedRegion> shared_;
  Control* control_ = nullptr;
  Beat* beats_ = nullptr;                        // [shard]
  std::atomic<std::uint32_t>* died_ = nullptr;   // [shard]
  void watch(std::int64_t now);  // the watchdog's check of every live shard
  const Topology* topology_ = nullptr;  // (processes: start()'s, for restarts)
  std::vector<Child> children_;         // [shard]
  int stop_fd_ = -1;
  // In a shard process: its ends of the start-up pipes.
  int report_fd_ = -1;
  int go_fd_ = -1;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t started_ = 0;   // shards whose init returned
  bool failed_ = false;
  bool go_ = false;           // every shard started: run the kernels
  std::string error_;
};

}  // namespace mnv
