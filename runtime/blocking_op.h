// runtime/blocking_op.h — the driver every blocking op is built on (net/io.h's I/O ops, sleeps).
//
// An op tries its work without blocking (Derived::attempt()); when it cannot finish it blocks its
// thread on a Block (an fd and events, a deadline, or both) and tries again each time the kernel
// readies the thread, until it is done or fails. The awaiter itself is the state machine
// (runtime/block.h's Op), so an op allocates nothing however many times it blocks.
//
//   class MyOp : public BlockingOp<MyOp> {
//    public:
//     explicit MyOp(std::source_location w) : BlockingOp(w) {}
//     R attempt();                   // kDone; kWait with block_ filled in; or fail(errno)
//     void await_resume() const noexcept {}
//   };
//
// Derived may also define (the defaults do nothing):
//   std::int64_t timeout_ns() const  the op's deadline, counted from when it first blocks (0: none)
//   bool timeout_is_retry() const    a deadline that passes is a retry, not ETIMEDOUT (a sleep)
//   void on_woken(const Block& b)    before a retry: what the kernel reported (b.revents)
//   void before_block()              just before the thread blocks (after every attempt that waits)
//   void leave_waits()               before a retry: give up in-process waiter slots (a Derived
//                                    that takes any also calls it from its own destructor when
//                                    suspended(): a thread can end while its op waits)
//
// Errors are raised into the thread's finally handler (runtime/raise.h); an op out of its
// dispatch's budget (runtime/process.h) leaves the thread runnable, the op tried first when it
// next runs.
#pragma once

#include <coroutine>
#include <cstdint>
#include <source_location>

#include "runtime/block.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/process.h"
#include "runtime/thread.h"

namespace mnv {

template <typename Derived>
class BlockingOp : public Op {
 public:
  // kNextPass (internal): not tried, the dispatch's budget is spent (runtime/process.h).
  enum class R { kDone, kWait, kError, kNextPass };

  explicit BlockingOp(std::source_location where) : where_(where) {}
  BlockingOp(const BlockingOp&) = delete;
  BlockingOp& operator=(const BlockingOp&) = delete;

  bool await_ready() noexcept {
    if (!this_process().spend()) {
      last_ = R::kNextPass;
      return false;
    }
    return (last_ = self().attempt()) == R::kDone;
  }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) noexcept {
    h_ = h;
    ThreadState& t = this_thread();
    t.resume_at = h;
    if (last_ == R::kError) return t.raise(h, error_value());
    if (last_ == R::kNextPass) {
      // Runnable, its op tried first when it next runs: the dispatch ends here (its budget is
      // spent), and the kernel runs what is left at its next pass.
      t.op = this;
      t.process->requeue(&t);
    } else {
      block(t);
    }
    return std::noop_coroutine();
  }

  Step step() override {
    ThreadState& t = this_thread();
    self().leave_waits();
    self().on_woken(block_);
    R r;
    if (block_.timed_out && !self().timeout_is_retry()) {
      err_ = ETIMEDOUT;
      r = R::kError;
    } else {
      r = self().attempt();
    }
    if (r == R::kDone) {
      t.op = nullptr;
      t.resume_at = h_;
      return Step::kResume;
    }
    if (r == R::kError) {
      t.op = nullptr;
      bool ends = !t.finally_at || t.in_finally;
      t.raise(h_, error_value());
      return ends ? Step::kEnded : Step::kResume;
    }
    block(t);
    return Step::kBlocked;
  }

  // The defaults of the hooks above.
  std::int64_t timeout_ns() const { return 0; }
  bool timeout_is_retry() const { return false; }
  void on_woken(const Block&) {}
  void before_block() {}
  void leave_waits() {}

 protected:
  Derived& self() { return static_cast<Derived&>(*this); }
  Error error_value() const {
    Error e{.code = err_, .where = where_};
    if (err_ == ENOMEM) e.needed_pages = this_process().heap().needed_pages();
    return e;
  }
  R fail(int code) {
    err_ = code;
    return R::kError;
  }

  // Whether the op has suspended its thread (and may hold waiter slots).
  bool suspended() const { return static_cast<bool>(h_); }

  std::source_location where_;
  std::coroutine_handle<> h_;
  Block block_;
  std::int64_t deadline_ = 0;  // the op's deadline, fixed when it first blocks
  std::int64_t retry_at_ = 0;  // a wait until then (a sleep, a back-off) instead of the deadline
  int err_ = 0;
  R last_ = R::kDone;

 private:
  void block(ThreadState& t) {
    self().before_block();
    if (std::int64_t timeout = self().timeout_ns(); deadline_ == 0 && timeout > 0) deadline_ = monotonic_ns() + timeout;
    block_.deadline_ns = retry_at_ != 0 ? retry_at_ : deadline_;
    block_.clear();
    t.op = this;
    t.process->block(&t, &block_);
  }
};

}  // namespace mnv
