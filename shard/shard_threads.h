// shard/shard_threads.h — the shard launcher that runs each shard as a thread of this process.
//
// Shards start in order under one mutex (shard K's `init` after shard K-1's report); a failing
// shard stops the kernels already made; wait() joins the threads. The shards share this address
// space, so a posted fd is just its number and a sleeping shard is woken through its poller.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shard/shard.h"

namespace mnv {

class ShardThreads final : public ShardSet {
 public:
  static std::unique_ptr<ShardSet> start(const Topology& topology, ShardSetOptions options, std::string* error);
  ~ShardThreads() override;

  int wait() override;
  void request_stop() override;
  bool processes() const override { return false; }
  std::uint64_t loop_turns(std::size_t i) const override { return loops_[i].turns.load(std::memory_order_relaxed); }
  bool loop_idle(std::size_t i) const override {
    return loops_[i].ended.load(std::memory_order_acquire) || mailboxes_.asleep(i);
  }

 private:
  explicit ShardThreads(ShardSetOptions options) : ShardSet(std::move(options)) {}
  void configure_kernel(std::size_t, KernelConfig*) override {}
  void attach(Shard& shard) override;
  void report(std::size_t index, bool ok, const std::string& error) override;
  bool await_turn(std::size_t index) override;
  bool await_go() override;
  void before_run(Shard&) override {}
  void on_turn(Shard& shard) override {
    std::atomic<std::uint64_t>& turns = loops_[shard.index()].turns;  // (only this thread writes it)
    turns.store(turns.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void loop_ended(Shard& shard) override { loops_[shard.index()].ended.store(true, std::memory_order_release); }
  bool send_fd(std::size_t from, std::size_t to, ShardMessage message, int fd) override;
  void receive_fds(Shard&) override {}  // (never sent: fds travel as numbers)
  void swap_kernel(Shard& shard, std::unique_ptr<Kernel>& kernel) override;

  std::vector<std::thread> threads_;
  struct alignas(kCacheLine) Loop {  // written by its shard's thread, read by any
    std::atomic<std::uint64_t> turns{0};
    std::atomic<bool> ended{false};
  };
  std::unique_ptr<Loop[]> loops_;  // [shard]
  std::mutex mu_;  // guards every shard's kernel pointer and the start-up state below
  std::condition_variable cv_;
  std::size_t started_ = 0;  // shards whose init returned
  bool failed_ = false;
  bool go_ = false;  // every shard started: run the kernels
  std::string error_;
};

}  // namespace mnv
