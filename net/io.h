// net/io.h — the blocking-style I/O ops (the seed's vk_read, vk_readline, vk_write...).
//
// Each op works on the thread's default socket, or on a named one passed first:
//
//   std::size_t n = co_await mnv::readline(buf, sizeof buf);   // default socket
//   co_await mnv::write(other, buf, n);                        // a named socket
//
//   read(buf, n)        exactly n bytes, or fewer at EOF; returns the count
//   readline(buf, n)    up to and including '\n', at most n bytes, or fewer at EOF
//   write(buf, n)       buffers n bytes, sending when the ring fills (never polls first)
//   printf(fmt, ...)    a formatted write
//   flush()             until everything written has been sent
//   readable()          until input is buffered (true) or the input has ended (false);
//                       flushes pending output first; rings go back once the process idles
//   writable()          until output can be accepted
//   splice(from,to,n)   moves n bytes (or to EOF) from socket `from`'s input to `to`'s output
//   tx_close()          flush, then end the output (shutdown(SHUT_WR), or EOF for a socket)
//   accept(listener)    the next connection's fd (backs off on EMFILE/ENFILE; never spins)
//   connect(sock, addr) non-blocking connect with the socket's deadline
//   sleep_for(ns), sleep_until(ns)
// and, without blocking: eof(), nodata(), clear(), hup(), hanged(), rx_close(), and the
// all-or-nothing shortcuts try_write() and try_splice().
//
// Policy (the seed's "deductive" I/O): an op that can complete from the buffers completes
// without suspending and without a syscall; output is sent when the ring fills, on flush(), or
// when a read is about to block; nothing polls for writability before a write returned EAGAIN.
// Errors (ECONNRESET, EPIPE, ETIMEDOUT from the socket's timeout_ns, ENOMEM) are raised into
// the thread's finally handler; EOF is not an error.
//
// Each op's awaiter is itself the state machine (runtime/block.h's Op), so a call allocates
// nothing, however many times it blocks.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <coroutine>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <source_location>

#include "net/socket.h"
#include "runtime/block.h"
#include "runtime/blocking_op.h"
#include "runtime/clock.h"
#include "runtime/process.h"
#include "runtime/thread.h"

namespace mnv {

// The calling thread's default socket (the socket ops without a named one use).
inline Socket& default_socket() {
  ThreadIo* io = this_thread().io;
  MNV_ASSERT(io != nullptr);
  return static_cast<Socket&>(*io);
}
// Makes `s` thread `t`'s default socket.
inline void set_default_socket(ThreadState& t, Socket& s) { t.io = &s; }
inline void set_default_socket(Socket& s) { set_default_socket(this_thread(), s); }

// The driver of every socket op: runtime/blocking_op.h's, with the socket's deadline
// (timeout_ns), its readiness reports, and its in-process waiter slots. Derived::attempt() tries
// the op without blocking.
template <typename Derived>
class IoOp : public BlockingOp<Derived> {
 public:
  using R = typename BlockingOp<Derived>::R;

  IoOp(Socket& s, std::source_location where) : BlockingOp<Derived>(where), s_(&s) {}
  ~IoOp() {
    if (this->suspended()) leave_waits();  // one that never suspended never took a waiter slot
  }

  // BlockingOp's hooks.
  std::int64_t timeout_ns() const { return s_->timeout_ns(); }
  void on_woken(const Block& b) { s_->on_ready(b.revents); }
  void before_block() { waited_on_ = s_->rx_peer(); }
  void leave_waits() {
    ThreadState* me = tl_current.thread;
    for (Socket* s : {waited_on_, s_->rx_peer(), s_}) {
      if (s != nullptr) s->forget_waiter(me);
    }
  }

 protected:
  using BlockingOp<Derived>::fail;
  using BlockingOp<Derived>::block_;
  using BlockingOp<Derived>::retry_at_;

  // For an op that reads until it has enough: one fill(). True when input came (try again);
  // else false with the op's result in *r: done at the end of input, the error, or a wait.
  bool more_input(Socket& s, R* r) {
    Block in;
    switch (s.fill(in)) {
      case Socket::Io::kProgress: return true;
      case Socket::Io::kEof: *r = R::kDone; return false;
      case Socket::Io::kError: *r = fail(s.error()); return false;
      case Socket::Io::kAgain:
      case Socket::Io::kInFlight: *r = wait_for_input(s, in); return false;  // (fill() never says kInFlight)
    }
    return true;
  }

  // Before waiting for input: send pending output (lazy flush), let the rings go once the
  // process idles, and wait for output space too if the send would block.
  R wait_for_input(Socket& s, Block& in) {
    if (s.has_output()) {
      Block out;
      Socket::Io io = s.drain(out);
      if (io == Socket::Io::kError) return fail(s.error());
      // (kInFlight: the send goes on by itself; a failure is reported on the fd.)
      if (io == Socket::Io::kAgain && out.fd >= 0 && out.fd == in.fd) in.events |= out.events;
    }
    s.keep_rings_until_idle();
    block_.fd = in.fd;
    block_.events = in.events;
    return R::kWait;
  }

  Socket* s_;
  Socket* waited_on_ = nullptr;  // the socket whose waiter slot this op may occupy
};

class ReadOp : public IoOp<ReadOp> {
 public:
  ReadOp(Socket& s, void* buf, std::size_t n, std::source_location w)
      : IoOp(s, w), buf_(static_cast<char*>(buf)), n_(n) {}
  R attempt();
  std::size_t await_resume() const noexcept { return got_; }

 private:
  char* buf_;
  std::size_t n_;
  std::size_t got_ = 0;
};

class ReadlineOp : public IoOp<ReadlineOp> {
 public:
  ReadlineOp(Socket& s, char* buf, std::size_t n, std::source_location w) : IoOp(s, w), buf_(buf), n_(n) {}
  R attempt();
  std::size_t await_resume() const noexcept { return got_; }

 private:
  char* buf_;
  std::size_t n_;
  std::size_t got_ = 0;
};

class WriteOp : public IoOp<WriteOp> {
 public:
  // `owned`: a micro-heap buffer holding the bytes, freed with the op (printf's long output).
  // `error`: raise this instead of writing (printf could not get its buffer).
  WriteOp(Socket& s, const void* buf, std::size_t n, std::source_location w, char* owned = nullptr, int error = 0)
      : IoOp(s, w), buf_(static_cast<const char*>(buf)), n_(n), owned_(owned), error_(error) {}
  ~WriteOp();
  R attempt();
  void await_resume() const noexcept {}

 private:
  const char* buf_;
  std::size_t n_;
  std::size_t done_ = 0;
  char* owned_;
  int error_;
};

class FlushOp : public IoOp<FlushOp> {
 public:
  FlushOp(Socket& s, bool close_after, std::source_location w) : IoOp(s, w), close_after_(close_after) {}
  R attempt();
  void await_resume() const noexcept {}

 private:
  bool close_after_;
};

class ReadableOp : public IoOp<ReadableOp> {
 public:
  ReadableOp(Socket& s, std::source_location w) : IoOp(s, w) {}
  R attempt();
  bool await_resume() const noexcept { return !s_->rx().empty(); }
};

class WritableOp : public IoOp<WritableOp> {
 public:
  WritableOp(Socket& s, std::source_location w) : IoOp(s, w) {}
  R attempt();
  void await_resume() const noexcept {}
};

class SpliceOp : public IoOp<SpliceOp> {
 public:
  SpliceOp(Socket& from, Socket& to, std::size_t n, std::source_location w) : IoOp(from, w), to_(&to), n_(n) {}
  R attempt();
  std::size_t await_resume() const noexcept { return moved_; }

 private:
  Socket* to_;
  std::size_t n_;
  std::size_t moved_ = 0;
};

class AcceptOp : public IoOp<AcceptOp> {
 public:
  AcceptOp(Socket& listener, sockaddr_storage* peer, socklen_t* len, std::source_location w)
      : IoOp(listener, w), peer_(peer), len_(len) {}
  R attempt();
  bool timeout_is_retry() const { return retry_at_ != 0; }
  // The accepted fd (non-blocking, close-on-exec, TCP_NODELAY).
  int await_resume() const noexcept { return fd_; }

 private:
  sockaddr_storage* peer_;
  socklen_t* len_;
  int fd_ = -1;
};

class ConnectOp : public IoOp<ConnectOp> {
 public:
  ConnectOp(Socket& s, const sockaddr* addr, socklen_t len, std::source_location w);
  R attempt();
  void await_resume() const noexcept {}

 private:
  sockaddr_storage addr_;
  socklen_t len_;
  bool started_ = false;
};

// Sleeps until a CLOCK_MONOTONIC time: an op on no socket.
class SleepOp : public BlockingOp<SleepOp> {
 public:
  SleepOp(std::int64_t until_ns, std::source_location w) : BlockingOp(w), until_(until_ns) {}
  R attempt();
  bool timeout_is_retry() const { return true; }
  void await_resume() const noexcept {}

 private:
  std::int64_t until_;
};

// ---- the API -----------------------------------------------------------------------------

using Where = std::source_location;

[[nodiscard]] inline ReadOp read(Socket& s, void* buf, std::size_t n, Where w = Where::current()) {
  return ReadOp(s, buf, n, w);
}
[[nodiscard]] inline ReadOp read(void* buf, std::size_t n, Where w = Where::current()) {
  return ReadOp(default_socket(), buf, n, w);
}
[[nodiscard]] inline ReadlineOp readline(Socket& s, char* buf, std::size_t n, Where w = Where::current()) {
  return ReadlineOp(s, buf, n, w);
}
[[nodiscard]] inline ReadlineOp readline(char* buf, std::size_t n, Where w = Where::current()) {
  return ReadlineOp(default_socket(), buf, n, w);
}
[[nodiscard]] inline WriteOp write(Socket& s, const void* buf, std::size_t n, Where w = Where::current()) {
  return WriteOp(s, buf, n, w);
}
[[nodiscard]] inline WriteOp write(const void* buf, std::size_t n, Where w = Where::current()) {
  return WriteOp(default_socket(), buf, n, w);
}
// Formats into the send ring (or, when it does not fit, a temporary buffer in the micro-heap).
[[nodiscard]] WriteOp vprintf(Socket& s, Where w, const char* fmt, va_list args);
[[nodiscard]] WriteOp printf(Socket& s, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
[[nodiscard]] WriteOp printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
[[nodiscard]] inline FlushOp flush(Socket& s, Where w = Where::current()) { return FlushOp(s, false, w); }
[[nodiscard]] inline FlushOp flush(Where w = Where::current()) { return FlushOp(default_socket(), false, w); }
[[nodiscard]] inline FlushOp tx_close(Socket& s, Where w = Where::current()) { return FlushOp(s, true, w); }
[[nodiscard]] inline FlushOp tx_close(Where w = Where::current()) { return FlushOp(default_socket(), true, w); }
[[nodiscard]] inline ReadableOp readable(Socket& s, Where w = Where::current()) { return ReadableOp(s, w); }
[[nodiscard]] inline ReadableOp readable(Where w = Where::current()) { return ReadableOp(default_socket(), w); }
[[nodiscard]] inline WritableOp writable(Socket& s, Where w = Where::current()) { return WritableOp(s, w); }
[[nodiscard]] inline WritableOp writable(Where w = Where::current()) { return WritableOp(default_socket(), w); }
[[nodiscard]] inline SpliceOp splice(Socket& from, Socket& to, std::size_t n, Where w = Where::current()) {
  return SpliceOp(from, to, n, w);
}
[[nodiscard]] inline AcceptOp accept(Socket& listener, sockaddr_storage* peer = nullptr, socklen_t* len = nullptr,
                                     Where w = Where::current()) {
  return AcceptOp(listener, peer, len, w);
}
// Opens a non-blocking TCP socket in `s` (owned by the current process) and connects it;
// ETIMEDOUT after s.timeout_ns, ECONNREFUSED etc. are raised.
[[nodiscard]] inline ConnectOp connect(Socket& s, const sockaddr* addr, socklen_t len, Where w = Where::current()) {
  return ConnectOp(s, addr, len, w);
}
[[nodiscard]] SleepOp sleep_until(std::int64_t monotonic_deadline_ns, Where w = Where::current());
[[nodiscard]] SleepOp sleep_for(std::int64_t ns, Where w = Where::current());

// Spawns `child` as a pipeline child (the seed's vk_begin_pipeline): pending output is flushed,
// then what this thread writes goes to the child's input, and the child's output goes where
// this thread's output went. The child's socket lives in the heap and is freed when it ends.
// The parent hup()s to end the child's input, and must outlive the child when the output is
// an fd it owns. Raises ENOMEM if the child's socket does not fit.
Task<ThreadRef> pipeline(Thread child, void* message = nullptr);

// Non-blocking shortcuts for the common case, all or nothing: when the bytes fit now they are
// moved without an op (nothing to construct, nothing that could suspend); otherwise nothing
// happens and they return false, and the blocking op (write(), splice()) does the work and
// raises what it must.
// Buffers all n bytes in the send ring.
inline bool try_write(Socket& s, const void* buf, std::size_t n) {
  if (!s.takes(n)) return false;
  s.tx().write(buf, n);
  if (s.tx_peer() != nullptr) s.wake_reader();
  return true;
}
// Moves exactly n bytes from `from`'s receive ring to `to`'s send ring.
inline bool try_splice(Socket& from, Socket& to, std::size_t n) {
  if (from.rx().size() < n || !to.takes(n)) return false;
  from.rx().move_to(to.tx(), n);
  if (to.tx_peer() != nullptr) to.wake_reader();
  return true;
}

// Non-blocking state ops.
inline bool eof(Socket& s) { return s.eof(); }
inline bool eof() { return eof(default_socket()); }
inline bool nodata(Socket& s) { return s.eof() && s.rx().empty(); }
inline bool nodata() { return nodata(default_socket()); }
inline void clear(Socket& s) { s.clear_eof(); }
inline void clear() { clear(default_socket()); }
// Ends this socket's output (Socket::hup()).
inline void hup(Socket& s) { s.hup(); }
inline void hup() { hup(default_socket()); }
inline bool hanged(Socket& s) { return s.hung_up(); }
inline bool hanged() { return hanged(default_socket()); }
// Stops reading (Socket::rx_close()): shutdown(SHUT_RD) on an fd; buffered input is dropped.
inline void rx_close(Socket& s) { s.rx_close(); }
inline void rx_close() { rx_close(default_socket()); }

}  // namespace mnv
