// redis/quiet_ops.cc — connect and transfer ops that return their error (quiet_ops.h).
#include "redis/quiet_ops.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/clock.h"
#include "runtime/kernel.h"

namespace mnv::redis {
namespace {

std::int64_t left_until(std::int64_t until) {
  std::int64_t left = until - monotonic_ns();
  return left > 0 ? left : 1;
}

}  // namespace

QuietConnectOp::QuietConnectOp(Socket& s, const sockaddr* addr, socklen_t len, std::int64_t until,
                               std::source_location w)
    : IoOp(s, w), len_(len), until_(until) {
  MNV_ASSERT(len <= sizeof addr_);
  std::memcpy(&addr_, addr, len);
}

std::int64_t QuietConnectOp::timeout_ns() const { return left_until(until_); }

QuietConnectOp::R QuietConnectOp::attempt() {
  Socket& s = *s_;
  if (!started_) {
    started_ = true;
    int fd = ::socket(addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      result_ = errno;
      return R::kDone;
    }
    if (Kernel* k = Kernel::current(); k != nullptr && !k->adopt_fd(fd)) {
      ::close(fd);
      result_ = EMFILE;  // this process's fd quota (KernelConfig::max_fds_per_process)
      return R::kDone;
    }
    s.bind_fd(fd);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr_), len_) == 0) return R::kDone;
    if (errno != EINPROGRESS) {
      result_ = errno;
      return R::kDone;
    }
    block_.fd = fd;
    block_.events = POLLOUT;
    return R::kWait;
  }
  int soerr = 0;
  socklen_t l = sizeof soerr;
  if (::getsockopt(s.tx_fd(), SOL_SOCKET, SO_ERROR, &soerr, &l) != 0) soerr = errno;
  if (soerr != 0) {
    result_ = soerr;
    return R::kDone;
  }
  pollfd p{s.tx_fd(), POLLOUT, 0};
  if (::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT)) return R::kDone;
  if (monotonic_ns() >= until_) {
    result_ = ETIMEDOUT;
    return R::kDone;
  }
  block_.fd = s.tx_fd();
  block_.events = POLLOUT;
  return R::kWait;
}

std::int64_t QuietTransferOp::timeout_ns() const { return left_until(until_); }

QuietTransferOp::R QuietTransferOp::attempt() {
  Socket& s = *s_;
  if (s.error() != 0) return done(s.error());
  if (want_ == Want::kSpace) {
    if (!s.tx().ensure()) return done(ENOMEM);
    for (;;) {
      if (s.tx().space() >= space_) return done(0);
      switch (s.drain(block_)) {
        case Socket::Io::kProgress: continue;
        case Socket::Io::kInFlight:
          if (s.tx().space() >= space_) return done(0);  // a finished send made room
          break;
        case Socket::Io::kAgain: break;
        case Socket::Io::kEof:
        case Socket::Io::kError: return done(s.error() != 0 ? s.error() : EPIPE);
      }
      if (monotonic_ns() >= until_) return done(ETIMEDOUT);
      return R::kWait;
    }
  }
  Block in;
  switch (s.fill(in)) {
    case Socket::Io::kProgress:
    case Socket::Io::kEof: return done(0);
    case Socket::Io::kError: return done(s.error() != 0 ? s.error() : ECONNRESET);
    case Socket::Io::kAgain:
    case Socket::Io::kInFlight: break;
  }
  if (monotonic_ns() >= until_) return done(ETIMEDOUT);
  if (!s.tx().empty()) {  // the lazy flush: what was sent goes out before we wait for its reply
    Block out;
    Socket::Io io = s.drain(out);
    if (io == Socket::Io::kError || io == Socket::Io::kEof) return done(s.error() != 0 ? s.error() : EPIPE);
    if (io == Socket::Io::kAgain && out.fd >= 0 && out.fd == in.fd) in.events |= out.events;
  }
  s.keep_rings_until_idle();
  block_.fd = in.fd;
  block_.events = in.events;
  return R::kWait;
}

}  // namespace mnv::redis
