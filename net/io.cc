#include "net/io.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "mem/heap.h"
#include "mem/log.h"
#include "runtime/future.h"
#include "runtime/kernel.h"
#include "runtime/raise.h"

namespace mnv {

namespace {
// When this shard last logged an accept back-off (rate limit: one line per second). Per shard,
// not per process: each shard's kernel runs on its own OS thread, and its listeners back off on
// their own; a plain static here was written by every shard thread at once (a data race).
constinit thread_local std::int64_t tl_accept_backoff_logged = 0;
}  // namespace

ReadOp::R ReadOp::attempt() {
  Socket& s = *s_;
  for (;;) {
    got_ += s.rx().read(buf_ + got_, n_ - got_);
    if (got_ == n_) return R::kDone;
    if (R r; !more_input(s, &r)) return r;
  }
}

ReadlineOp::R ReadlineOp::attempt() {
  Socket& s = *s_;
  for (;;) {
    std::size_t room = n_ - got_;
    std::size_t line = s.rx().line_length(room);
    if (line > 0) {
      got_ += s.rx().read(buf_ + got_, line);
      return R::kDone;
    }
    got_ += s.rx().read(buf_ + got_, room);  // no newline yet: take what there is
    if (got_ == n_) return R::kDone;        // the line is longer than the buffer
    if (R r; !more_input(s, &r)) return r;
  }
}

WriteOp::~WriteOp() {
  if (owned_ != nullptr) Heap::owner(owned_)->free(owned_);
}

WriteOp::R WriteOp::attempt() {
  Socket& s = *s_;
  if (error_ != 0) return fail(error_);
  if (s.hung_up()) return fail(EPIPE);
  if (s.error() != 0) return fail(s.error());
  for (;;) {
    if (!s.tx().ensure()) return fail(ENOMEM);
    done_ += s.tx().write(buf_ + done_, n_ - done_);
    if (s.tx_peer() != nullptr) s.wake_reader();
    if (done_ == n_) return R::kDone;
    switch (s.drain(block_)) {
      case Socket::Io::kProgress: continue;
      case Socket::Io::kInFlight:
        if (!s.tx().full()) continue;  // a finished send made room
        return R::kWait;
      case Socket::Io::kAgain: return R::kWait;
      case Socket::Io::kEof:
      case Socket::Io::kError: return fail(s.error());
    }
  }
}

FlushOp::R FlushOp::attempt() {
  Socket& s = *s_;
  switch (s.drain(block_)) {
    case Socket::Io::kAgain:
    case Socket::Io::kInFlight: return R::kWait;
    case Socket::Io::kEof:
    case Socket::Io::kError: return fail(s.error());
    case Socket::Io::kProgress: break;
  }
  if (close_after_) s.hup();
  return R::kDone;
}

ReadableOp::R ReadableOp::attempt() {
  Socket& s = *s_;
  if (!s.rx().empty()) return R::kDone;
  Block in;
  switch (s.fill(in)) {
    case Socket::Io::kProgress: return s.rx().empty() ? R::kWait : R::kDone;
    case Socket::Io::kEof: s.release_idle_rings(); return R::kDone;
    case Socket::Io::kError: return fail(s.error());
    case Socket::Io::kAgain:
    case Socket::Io::kInFlight: return wait_for_input(s, in);
  }
  return R::kDone;
}

WritableOp::R WritableOp::attempt() {
  Socket& s = *s_;
  if (s.error() != 0) return fail(s.error());
  if (!s.tx().full()) {
    if (s.tx_peer() != nullptr || s.tx_fd() < 0) return R::kDone;
    // An fd: writable means the kernel would take bytes now.
    pollfd p{s.tx_fd(), POLLOUT, 0};
    if (::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT)) return R::kDone;
    block_.fd = s.tx_fd();
    block_.events = POLLOUT;
    return R::kWait;
  }
  switch (s.drain(block_)) {
    case Socket::Io::kProgress: return R::kDone;
    case Socket::Io::kInFlight: return s.tx().full() ? R::kWait : R::kDone;
    case Socket::Io::kAgain: return R::kWait;
    default: return fail(s.error());
  }
}

SpliceOp::R SpliceOp::attempt() {
  Socket& from = *s_;
  Socket& to = *to_;
  for (;;) {
    if (moved_ == n_) return R::kDone;
    if (!to.tx().ensure()) return fail(ENOMEM);
    std::size_t m = from.rx().move_to(to.tx(), n_ - moved_);
    moved_ += m;
    if (m > 0 && to.tx_peer() != nullptr) to.wake_reader();
    if (moved_ == n_) return R::kDone;
    if (to.tx().full()) {
      switch (to.drain(block_)) {
        case Socket::Io::kProgress: continue;
        case Socket::Io::kInFlight:
          if (!to.tx().full()) continue;  // a finished send made room
          return R::kWait;
        case Socket::Io::kAgain: return R::kWait;
        default: return fail(to.error());
      }
    }
    Block in;
    switch (from.fill(in)) {
      case Socket::Io::kProgress: continue;
      case Socket::Io::kEof: return R::kDone;
      case Socket::Io::kError: return fail(from.error());
      case Socket::Io::kAgain:
      case Socket::Io::kInFlight:
        block_.fd = in.fd;
        block_.events = in.events;
        return R::kWait;
    }
  }
}

AcceptOp::R AcceptOp::attempt() {
  Socket& s = *s_;
  retry_at_ = 0;
  for (;;) {
    sockaddr_storage addr;
    socklen_t len = sizeof addr;
    int fd = ::accept4(s.rx_fd(), reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (peer_ != nullptr) *peer_ = addr;
      if (len_ != nullptr) *len_ = len;
      fd_ = fd;
      return R::kDone;
    }
    switch (errno) {
      case EINTR:
      case ECONNABORTED:
        continue;
      case EAGAIN:
        block_.fd = s.rx_fd();
        block_.events = POLLIN;
        return R::kWait;
      case EMFILE:
      case ENFILE:
      case ENOBUFS:
      case ENOMEM: {
        // Out of descriptors or memory: the pending connection stays queued; try again a little
        // later instead of spinning on a listener that stays readable.
        std::int64_t now = monotonic_ns();
        if (now - tl_accept_backoff_logged > 1'000'000'000) {
          log_line("mnv: accept on fd %d: %s; backing off 10 ms", s.rx_fd(), strerror(errno));
          tl_accept_backoff_logged = now;
        }
        retry_at_ = now + 10'000'000;
        block_.fd = -1;
        block_.events = 0;
        return R::kWait;
      }
      default:
        return fail(errno);
    }
  }
}

ConnectOp::ConnectOp(Socket& s, const sockaddr* addr, socklen_t len, std::source_location w)
    : IoOp(s, w), len_(len) {
  MNV_ASSERT(len <= sizeof addr_);
  std::memcpy(&addr_, addr, len);
}

ConnectOp::R ConnectOp::attempt() {
  Socket& s = *s_;
  if (!started_) {
    started_ = true;
    int fd = ::socket(addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(errno);
    if (Kernel* k = Kernel::current(); k != nullptr && !k->adopt_fd(fd)) {
      ::close(fd);
      return fail(EMFILE);  // this process's fd quota (KernelConfig::max_fds_per_process)
    }
    s.bind_fd(fd);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr_), len_) == 0) return R::kDone;
    if (errno != EINPROGRESS) return fail(errno);
    block_.fd = fd;
    block_.events = POLLOUT;
    return R::kWait;
  }
  int soerr = 0;
  socklen_t l = sizeof soerr;
  if (::getsockopt(s.tx_fd(), SOL_SOCKET, SO_ERROR, &soerr, &l) != 0) return fail(errno);
  if (soerr != 0) return fail(soerr);
  pollfd p{s.tx_fd(), POLLOUT, 0};
  if (::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT)) return R::kDone;
  block_.fd = s.tx_fd();
  block_.events = POLLOUT;
  return R::kWait;
}

SleepOp::R SleepOp::attempt() {
  if (monotonic_ns() >= until_) return R::kDone;
  retry_at_ = until_;
  block_.fd = -1;
  block_.events = 0;
  return R::kWait;
}

SleepOp sleep_until(std::int64_t deadline, Where w) { return SleepOp(deadline, w); }
SleepOp sleep_for(std::int64_t ns, Where w) { return SleepOp(monotonic_ns() + ns, w); }

WriteOp vprintf(Socket& s, Where w, const char* fmt, va_list args) {
  char small[256];
  va_list copy;
  va_copy(copy, args);
  int n = std::vsnprintf(small, sizeof small, fmt, copy);
  va_end(copy);
  if (n < 0) n = 0;
  if (static_cast<std::size_t>(n) < sizeof small && s.tx().ensure() && s.tx().space() >= static_cast<std::size_t>(n)) {
    s.tx().write(small, static_cast<std::size_t>(n));  // fits: straight into the ring
    return WriteOp(s, small, 0, w);
  }
  char* buf = static_cast<char*>(this_process().heap().allocate(static_cast<std::size_t>(n) + 1));
  if (buf == nullptr) return WriteOp(s, nullptr, 0, w, nullptr, ENOMEM);
  std::vsnprintf(buf, static_cast<std::size_t>(n) + 1, fmt, args);
  return WriteOp(s, buf, static_cast<std::size_t>(n), w, buf);
}

WriteOp printf(Socket& s, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  struct End {
    va_list& a;
    ~End() { va_end(a); }
  } end{args};
  return vprintf(s, Where::current(), fmt, args);
}

WriteOp printf(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  struct End {
    va_list& a;
    ~End() { va_end(a); }
  } end{args};
  return vprintf(default_socket(), Where::current(), fmt, args);
}

namespace {
void destroy_socket(void* p) {
  auto* s = static_cast<Socket*>(p);
  s->~Socket();
  Heap::owner(s)->free(s);
}
}  // namespace

Task<ThreadRef> pipeline(Thread child, void* message) {
  Socket& parent = default_socket();
  co_await flush(parent);
  void* mem = this_process().heap().allocate(sizeof(Socket));
  if (mem == nullptr || !child) {
    if (mem != nullptr) Heap::owner(mem)->free(mem);
    co_await raise(ENOMEM);
    co_return nullptr;
  }
  auto* cs = new (mem) Socket();
  parent.insert_after(*cs);
  ThreadState* t = child.get();
  set_default_socket(*t, *cs);
  t->on_end = destroy_socket;
  t->on_end_arg = cs;
  co_return co_await spawn(std::move(child), message);
}

}  // namespace mnv
