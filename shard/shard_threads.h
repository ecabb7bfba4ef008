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
  bool loops_ended() const override { return ended_.load(std::memory_order_acquire) == shards_.size(); }

 private:
  explicit ShardThreads(ShardSetOptions options) : ShardSet(std::move(options)) {}
  void configure_kernel(std::size_t, KernelConfig*) override {}
  void attach(Shard& shard) override;
  void report(std::size_t index, bool ok, const std::string& error) override;
  bool await_turn(std::size_t index) override;
  bool await_go() override;
  void before_run(Shard&) override {}
  void on_turn(Shard&) override {}
  void loop_ended(Shard&) override { ended_.fetch_add(1, std::memory_order_release); }
  bool send_fd(std::size_t from, std::size_t to, ShardMessage message, int fd) override;
  void receive_fds(Shard&) override {}  // (never sent: fds travel as numbers)
  void swap_kernel(Shard& shard, std::unique_ptr<Kernel>& kernel) override;

  std::vector<std::thread> threads_;
  std::atomic<std::size_t> ended_{0};  // shards whose loop returned
  std::mutex mu_;  // guards every shard's kernel pointer and the start-up state below
  std::condition_variable cv_;
  std::size_t started_ = 0;  // shards whose init returned
  bool failed_ = false;
  bool go_ = false;  // every shard started: run the kernels
  std::string error_;
};

}  // namespace mnv
