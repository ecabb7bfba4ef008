// redis/connection.h — one pipelined connection to a Redis server, used from one micro-thread.
//
// Commands are written into the socket's send ring by send() and go out together on flush() or,
// lazily, when receive() first has to wait, so several send()s before the receive()s are one
// write (pipelining). Replies come back in order: each receive() returns the reply to the oldest
// command not yet received. call() is send() then receive().
//
//   redis::Connection c(opts);
//   c.set_address(addr, len);                       // connects on first use
//   redis::Reply r;
//   if (int e = co_await c.call_args(&r, "INCRBY", key, redis::Int(5)); e != 0) log(c.why());
//   else if (r.is_error()) log(r.str());            // the server's error reply (-ERR, -WRONGTYPE)
//   else n = r.integer();
//
// Errors are returned, never raised (quiet_ops.h says why): 0, or an errno with why() naming the
// command and the cause. A server error reply is not an error of the call: it is a Reply with
// is_error(). The others:
//  * EBUSY: ConnectionOptions::max_in_flight commands already await replies; the command was
//    refused, not queued (back-pressure: receive() some first). Nothing grows without bound.
//  * ETIMEDOUT: the command's reply did not come within call_timeout_ns of its send() (or its
//    bytes could not be sent in that time). The connection is dropped, since a late reply would
//    answer the wrong command; the commands after it then fail with ECONNABORTED.
//  * ECONNRESET and other socket errors; EPROTO (the server sent something that is not RESP);
//    EMSGSIZE (a reply larger than the receive ring, Vectoring::kDefaultCapacity bytes: this
//    client reads replies in place, so it is for small values — counters, scripts, slot maps):
//    the connection is dropped, in-flight commands fail with ECONNABORTED.
//  * While disconnected, send() reconnects. A failed attempt backs off (backoff_min_ns doubling
//    up to backoff_max_ns); during a back-off send() fails at once with the last connect error
//    (ECONNREFUSED...) instead of waiting. A connection that works resets the back-off.
// A Reply is valid until the next receive() (or call()) on the connection. RESP3 push messages
// (out of band) are skipped. Nothing is allocated per command: the rings and the parser live in
// the thread's micro-heap, deadlines in a fixed array.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "net/socket.h"
#include "redis/command_writer.h"
#include "redis/reply.h"
#include "redis/reply_parser.h"
#include "runtime/thread.h"

namespace mnv::redis {

struct ConnectionOptions {
  std::int64_t connect_timeout_ns = 1'000'000'000;
  std::int64_t call_timeout_ns = 1'000'000'000;  // from a command's send() to its reply
  std::uint32_t max_in_flight = 256;             // commands sent and not received (<= kMaxInFlight)
  std::int64_t backoff_min_ns = 10'000'000;      // after a failed connect
  std::int64_t backoff_max_ns = 1'000'000'000;
  Limits limits;  // the reply parser's
};

struct ConnectionStats {
  std::uint64_t connects = 0;         // connections made
  std::uint64_t connect_failures = 0;
  std::uint64_t drops = 0;            // connections dropped (timeouts, errors, server closed)
  std::uint64_t refused = 0;          // send()s refused: EBUSY or during a back-off
};

class Connection {
 public:
  static constexpr std::uint32_t kMaxInFlight = 512;

  explicit Connection(const ConnectionOptions& options = {});
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The server's address (copied). A new one drops the current connection.
  void set_address(const sockaddr* addr, socklen_t len);

  // Writes a command into the send ring (connecting first if needed). 0 or an errno.
  Task<int> send(std::span<const std::string_view> args);
  // Sends everything written (by the oldest command's deadline).
  Task<int> flush();
  // The reply to the oldest command sent and not received: 0 with *out set, or an errno.
  Task<int> receive(Reply* out);
  // send() and receive().
  Task<int> call(std::span<const std::string_view> args, Reply* out);
  // The same with the arguments listed: co_await c.call_args(&r, "GET", key). (Not a braced list:
  // GCC 12 cannot put an initializer_list's array in a coroutine's co_await expression.)
  template <typename... A>
  Task<int> send_args(const A&... args) {
    const std::string_view argv[] = {std::string_view(args)...};
    co_return co_await send(std::span<const std::string_view>(argv));
  }
  template <typename... A>
  Task<int> call_args(Reply* out, const A&... args) {
    const std::string_view argv[] = {std::string_view(args)...};
    co_return co_await call(std::span<const std::string_view>(argv), out);
  }

  // Commands sent whose replies have not been received.
  std::uint32_t in_flight() const { return static_cast<std::uint32_t>(sent_ - received_); }
  bool connected() const { return sock_.has_value(); }
  const ConnectionStats& stats() const { return stats_; }
  // One line about the last failure (empty if none yet).
  const char* why() const { return why_; }
  // Drops the connection now (in-flight commands fail with ECONNABORTED, `code` in why()).
  void drop(int code);

 private:
  Task<int> connect();
  void note(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
  // Drops the connection after a failure with `code`: every command in flight is lost.
  int fail(int code);
  // Consumes the last reply's bytes from the ring, if receive() handed one out.
  void release_reply();

  ConnectionOptions opt_;
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;
  std::optional<Socket> sock_;
  ReplyParser parser_;
  std::size_t reply_size_ = 0;    // bytes of the reply handed out, consumed at the next receive
  std::uint64_t sent_ = 0;
  std::uint64_t received_ = 0;
  std::uint64_t lost_until_ = 0;  // commands [received_, lost_until_) were lost with a dropped connection
  int lost_error_ = 0;
  std::int64_t next_connect_ = 0;  // no connect attempt before this monotonic time
  std::int64_t backoff_ns_ = 0;
  int connect_error_ = 0;          // of the last failed attempt
  ConnectionStats stats_;
  std::int64_t deadlines_[kMaxInFlight];  // per command in flight, by sent index
  char why_[224] = {};
};

}  // namespace mnv::redis
