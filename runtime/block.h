// runtime/block.h — what a blocked micro-thread waits for (the seed's vk_block).
//
// A Block lives in the waiting thread's process heap (usually inside a socket). The thread
// fills in fd/events/deadline and blocks with `co_await wait(&block)`; after the process's
// dispatch the kernel reads it to register interest with its poller and arm a timer, and when
// the fd is ready or the deadline passes it fills revents/timed_out and readies the thread.
// A Block with fd < 0 and no deadline is an in-process wait: another thread of the same process
// readies it (socket-to-socket pipes).
#pragma once

#include <cstdint>

namespace mnv {

struct Block {
  int fd = -1;
  std::uint32_t events = 0;     // POLLIN / POLLOUT, what the thread waits for
  std::uint32_t revents = 0;    // what the poller reported (set by the kernel)
  std::int64_t deadline_ns = 0; // CLOCK_MONOTONIC; 0 = none
  bool timed_out = false;       // set by the kernel when the deadline fired first
  std::uint32_t timer = 0;      // the kernel's timer id while armed (kernel-owned)

  void clear() {
    revents = 0;
    timed_out = false;
  }
};

// A blocking operation that retries itself: while its thread is blocked, the dispatcher calls
// step() when the thread is readied, instead of resuming the coroutine. step() retries the
// operation and either finishes it (the coroutine resumes), blocks again, or raised an error.
// This is how an op spanning many wake-ups (read n bytes, a line, a flush) runs without
// allocating a coroutine frame per call: the awaiter itself is the state machine.
struct Op {
  enum class Step { kResume, kBlocked, kEnded };
  virtual Step step() = 0;

 protected:
  ~Op() = default;
};

}  // namespace mnv
