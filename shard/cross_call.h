// shard/cross_call.h — a micro-thread calls a handler on another shard and waits for the reply.
//
//   Request req{...};
//   ShardMessage reply = co_await mnv::cross_call(target, kKind, &req, sizeof req, 5'000'000);
//
// The request is copied into a 64-byte message (payload at most kShardPayload bytes: never a
// pointer into this shard's micro-heap), staged on the mailbox ring to `target`, and published at
// the end of the loop turn; the thread blocks like it blocks on I/O, and is readied when the
// reply comes back through the reverse ring. Errors are raised: ETIMEDOUT after `timeout_ns`
// (0: no deadline; a late reply is dropped), ENOSYS when the target has no handler for the kind,
// ENOBUFS when kMaxCalls calls are already in flight from this shard, EINVAL for a bad shard or
// payload, ECONNRESET when the target shard's process died before it answered (shards as
// processes: the call ends once the parent has seen the death; the restarted shard may still
// run the request, but its reply is dropped). A full ring is back-pressure: the call waits in this shard's backlog (still under its
// deadline) until the ring has room; nothing is dropped.
//
// cross_call_status() is the same call for a caller that must go on after a failure (a request
// handler whose deadline passed answers anyway): it raises nothing and stores the errno (or 0)
// in *status; the reply is zeroed after a failure.
#pragma once

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <source_location>

#include "runtime/blocking_op.h"
#include "shard/mailbox.h"

namespace mnv {

// On the driver of every blocking op (runtime/blocking_op.h): the call is staged at the first
// attempt, and the thread blocks (on no fd: the reply readies it, or the deadline passes) until
// complete() says how it ended.
class CrossCallOp : public BlockingOp<CrossCallOp> {
 public:
  CrossCallOp(std::size_t to, std::uint32_t kind, const void* payload, std::size_t len, std::int64_t timeout_ns,
              std::source_location where, int* status = nullptr);
  ~CrossCallOp();

  R attempt();
  std::int64_t timeout_ns() const { return timeout_ns_; }
  bool timeout_is_retry() const { return status_ != nullptr; }  // status mode: attempt() reports it
  void on_woken(const Block& b);
  // The reply (its payload as the handler wrote it); zeroed after an error that was lowered.
  ShardMessage await_resume() const noexcept { return reply_; }

  // Called by the shard when the reply arrives.
  void complete(const ShardMessage& reply, int error) {
    reply_ = reply;
    error_ = error;
    done_ = true;
    call_ = 0;
  }

 private:
  std::size_t to_;
  ShardMessage request_{};
  ShardMessage reply_{};
  std::int64_t timeout_ns_;
  std::uint32_t call_ = 0;
  int error_ = 0;
  int* status_ = nullptr;  // cross_call_status(): failures are stored here, not raised
  bool done_ = false;
  bool staged_ = false;
};

[[nodiscard]] inline CrossCallOp cross_call(std::size_t to, std::uint32_t kind, const void* payload, std::size_t len,
                                            std::int64_t timeout_ns = 0,
                                            std::source_location where = std::source_location::current()) {
  return CrossCallOp(to, kind, payload, len, timeout_ns, where);
}

[[nodiscard]] inline CrossCallOp cross_call_status(std::size_t to, std::uint32_t kind, const void* payload,
                                                   std::size_t len, std::int64_t timeout_ns, int* status,
                                                   std::source_location where = std::source_location::current()) {
  return CrossCallOp(to, kind, payload, len, timeout_ns, where, status);
}

}  // namespace mnv
