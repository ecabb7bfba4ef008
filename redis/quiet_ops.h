// redis/quiet_ops.h — socket ops for the Redis connection that return their error, never raise.
//
// net/io.h's ops raise ECONNRESET, ETIMEDOUT... into the thread's finally handler, which suits a
// connection a thread serves. A Redis call is a dependency of that work, not the work: a bidder
// whose Redis is slow or gone must go on (skip the budget lease, answer 204) rather than have its
// request thread's handler run. These two ops are the same state machines as net/io.h's connect
// and "more input" (built on IoOp), but they end with an error code (co_await gives it: 0 or an
// errno, ETIMEDOUT at their deadline) and leave the socket to the caller to drop.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <source_location>

#include "net/io.h"

namespace mnv::redis {

// Opens a non-blocking TCP socket into `s` (owned by the current process) and connects it by the
// monotonic time `until`.
class QuietConnectOp : public IoOp<QuietConnectOp> {
 public:
  QuietConnectOp(Socket& s, const sockaddr* addr, socklen_t len, std::int64_t until,
                 std::source_location w = std::source_location::current());
  R attempt();
  std::int64_t timeout_ns() const;
  bool timeout_is_retry() const { return true; }
  int await_resume() const noexcept { return result_; }

 private:
  sockaddr_storage addr_;
  socklen_t len_;
  std::int64_t until_;
  bool started_ = false;
  int result_ = 0;
};

// kInput: waits until the socket's input grows or ends (eof() then), sending buffered output
// first (the lazy flush). kSpace: sends buffered output until the send ring has `space` bytes
// free. Both by the monotonic time `until`.
class QuietTransferOp : public IoOp<QuietTransferOp> {
 public:
  enum class Want : std::uint8_t { kInput, kSpace };
  QuietTransferOp(Socket& s, Want want, std::size_t space, std::int64_t until,
                  std::source_location w = std::source_location::current())
      : IoOp(s, w), want_(want), space_(space), until_(until) {}
  R attempt();
  std::int64_t timeout_ns() const;
  bool timeout_is_retry() const { return true; }
  int await_resume() const noexcept { return result_; }

 private:
  R done(int result) {
    result_ = result;
    return R::kDone;
  }
  Want want_;
  std::size_t space_;
  std::int64_t until_;
  int result_ = 0;
};

}  // namespace mnv::redis
