// shard/shard_processes.h — the shard launcher that runs each shard as a process of its own.
//
// The caller's process forks one process per shard, in shard order, and waits for each one's
// start-up report on a pipe before forking the next; a pipe per shard then carries the go (or,
// closed, the call-off). Afterwards the caller's wait() watches the shard processes through
// pidfds: it restarts one that dies, kills one that is stuck (ShardSetOptions::restart_stuck_ms),
// and passes a stop (request_stop(), or SIGTERM/SIGINT through the kernel's signal handlers) on.
// What the processes share was mapped before the forks: the mailboxes, the stop flag, the
// loop-turn counts and death counts, each shard's wake eventfd and its Unix socket for posted
// fds. A shard process is killed (SIGKILL) when the process that forked it dies.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "shard/shard.h"
#include "shard/shared_memory.h"

namespace mnv {

class ShardProcesses final : public ShardSet {
 public:
  static std::unique_ptr<ShardSet> start(const Topology& topology, ShardSetOptions options, std::string* error);
  ~ShardProcesses() override;

  int wait() override;
  void request_stop() override;
  bool processes() const override { return true; }
  std::uint64_t loop_turns(std::size_t i) const override { return turns_[i].count.load(std::memory_order_relaxed); }
  bool loop_idle(std::size_t i) const override {
    return turns_[i].ended.load(std::memory_order_acquire) || mailboxes_.asleep(i);
  }

 private:
  explicit ShardProcesses(ShardSetOptions options) : ShardSet(std::move(options)) {}
  bool start_all(const Topology& topology, std::string* error);
  // In a shard's process.
  void configure_kernel(std::size_t index, KernelConfig* config) override;
  void attach(Shard& shard) override;
  void report(std::size_t index, bool ok, const std::string& error) override;
  bool await_turn(std::size_t) override { return true; }  // forked only once the previous shard reported
  bool await_go() override;
  void before_run(Shard& shard) override { receive_fds(shard); }  // what was posted to the one that died
  void on_turn(Shard& shard) override;
  void loop_ended(Shard& shard) override { turns_[shard.index()].ended.store(true, std::memory_order_release); }
  bool send_fd(std::size_t from, std::size_t to, ShardMessage message, int fd) override;
  void receive_fds(Shard& shard) override;  // every message waiting with its fd on its socket
  void swap_kernel(Shard& shard, std::unique_ptr<Kernel>& kernel) override { kernel_of(shard).swap(kernel); }

  // In the caller: fork shard i and wait for its report; stop what was started; restart shard
  // i after it died (false: not restarted, and why is logged).
  bool fork_shard(std::size_t i, std::string* error);
  // Shard i's start-up report (or EOF: it died first) into buf: its length, or -1 when it took
  // longer than start_timeout_ms or a stop was requested meanwhile (*why says which).
  ssize_t await_report(std::size_t i, char* buf, std::size_t len, std::string* why);
  void call_off_start();
  bool restart(std::size_t i, int status);  // try_restart(), then on_death
  bool try_restart(std::size_t i, const std::string& how);
  void kill_stuck_shards(std::int64_t now);  // restart_stuck_ms: a look at every live shard
  void wake_all_but(std::size_t skip);
  bool stop_requested() const { return control_ != nullptr && control_->stop.load(std::memory_order_acquire); }

  struct Child {
    int pid = -1;
    int pidfd = -1;      // readable once it exited
    int report_fd = -1;  // read: the child's start-up report
    int go_fd = -1;      // write: 'g' to run; closed: call it off
    bool exited = false;  // waited for
    std::uint32_t incarnation = 0;  // forks of this shard so far
    int restarts = 0;               // within the window that began at window_ns
    std::int64_t window_ns = 0;
    std::uint64_t last_turns = 0;   // its loop turns when last seen to progress,
    std::int64_t progress_ns = 0;   // and when that was
    bool killed_as_stuck = false;
  };
  // What the shard processes and the parent share, in one mapping made before the forks.
  // Written by the parent, read by every shard each loop turn: the stop flag, and the deaths
  // wait() has seen (a shard then fails its calls to one that died: ECONNRESET), with per shard
  // how many times it died. Written by each shard every turn, read by kill_stuck_shards(): its
  // loop-turn count, one cache line per shard.
  struct alignas(kCacheLine) Control {
    std::atomic<bool> stop{false};
    std::atomic<std::uint32_t> deaths{0};
  };
  struct alignas(kCacheLine) Turns {
    std::atomic<std::uint64_t> count{0};
    std::atomic<bool> ended{false};  // its loop returned (the last incarnation's)
  };
  std::unique_ptr<SharedRegion> shared_;
  Control* control_ = nullptr;
  Turns* turns_ = nullptr;                       // [shard]
  std::atomic<std::uint32_t>* died_ = nullptr;   // [shard]
  // Each shard's wake eventfd (its poller's wake()); per shard, a Unix seqpacket pair over which
  // fds are posted to it ([0]: it reads; [1]: the others send); the eventfd the SIGTERM/SIGINT
  // handler writes.
  std::vector<int> wake_fds_;
  std::vector<std::array<int, 2>> fd_sockets_;
  int stop_fd_ = -1;
  const Topology* topology_ = nullptr;  // (start()'s, for restarts)
  std::vector<Child> children_;         // [shard]
  // In a shard process: its ends of the start-up pipes; what it has seen of the shared state.
  int report_fd_ = -1;
  int go_fd_ = -1;
  bool stop_seen_ = false;                // the stop flag was passed to the kernel
  std::uint32_t deaths_seen_ = 0;         // Control::deaths, last seen
  std::vector<std::uint32_t> died_seen_;  // died_[j], last seen
};

}  // namespace mnv
