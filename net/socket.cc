#include "net/socket.h"

#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/kernel.h"
#include "runtime/process.h"

namespace mnv {

void close_owned_fd(int fd) {
  if (fd < 0) return;
  if (Kernel* k = Kernel::current()) {
    k->close_fd(fd);
  } else {
    ::close(fd);
  }
}

namespace {
void ready_if_blocked(ThreadRef& t) {
  ThreadRef w = t;
  t = nullptr;
  if (w != nullptr && w->status == ThreadState::Status::kBlocked) w->process->ready(w);
}
}  // namespace

Socket::~Socket() {
  if (tx_peer_ != nullptr) {  // our reader sees EOF
    tx_peer_->rx_peer_ = nullptr;
    tx_peer_->rx_eof = true;
    ready_if_blocked(data_waiter);
  }
  if (rx_peer_ != nullptr) {  // our writer sees EPIPE
    rx_peer_->tx_peer_ = nullptr;
    rx_peer_->error = EPIPE;
    ready_if_blocked(rx_peer_->space_waiter);
    ready_if_blocked(rx_peer_->data_waiter);
  }
  close_owned_fd(rx_fd_);
  if (tx_fd_ != rx_fd_ && owns_tx_fd_) close_owned_fd(tx_fd_);
}

void Socket::pipe(Socket& from, Socket& to) {
  from.tx_peer_ = &to;
  from.tx_fd_ = -1;
  to.rx_peer_ = &from;
  to.rx_fd_ = -1;
}

void Socket::set_tx_peer(Socket* to) {
  if (tx_peer_ != nullptr) tx_peer_->rx_peer_ = nullptr;
  tx_peer_ = to;
  if (to != nullptr) to->rx_peer_ = this;
}

void Socket::on_idle(IdleHook* h) {
  auto* s = static_cast<Socket*>(h);
  s->release_idle_rings();
}

void Socket::wake_reader() { ready_if_blocked(data_waiter); }
void Socket::wake_writer() { ready_if_blocked(space_waiter); }

Socket::Io Socket::fill(Block& b) {
  if (error != 0) return Io::kError;
  if (rx_eof || rx_closed) return Io::kEof;
  if (!rx.ensure()) {
    error = ENOMEM;
    return Io::kError;
  }
  if (rx.full()) return Io::kProgress;
  if (rx_peer_ != nullptr) {
    Socket& src = *rx_peer_;
    if (src.tx.move_to(rx, rx.space()) > 0) {
      src.wake_writer();
      return Io::kProgress;
    }
    if (src.hung_up) {
      rx_eof = true;
      return Io::kEof;
    }
    src.data_waiter = &this_thread();
    b.fd = -1;
    b.events = 0;
    return Io::kAgain;
  }
  if (rx_fd_ < 0) {
    rx_eof = true;
    return Io::kEof;
  }
  if (rx_drained) {
    b.fd = rx_fd_;
    b.events = POLLIN | POLLRDHUP;
    return Io::kAgain;
  }
  iovec v[2];
  int k = rx.space_iov(v);
  for (;;) {
    ssize_t n = ::readv(rx_fd_, v, k);
    if (n > 0) {
      rx_drained = static_cast<std::size_t>(n) < rx.space() && !rx_hup;
      rx.commit(static_cast<std::size_t>(n));
      return Io::kProgress;
    }
    if (n == 0) {
      rx_eof = true;
      return Io::kEof;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      b.fd = rx_fd_;
      b.events = POLLIN | POLLRDHUP;
      return Io::kAgain;
    }
    error = errno;
    return Io::kError;
  }
}

Socket::Io Socket::drain(Block& b) {
  if (error != 0) return Io::kError;
  if (tx.empty()) return Io::kProgress;
  if (tx_peer_ != nullptr) {
    // The peer pulls; wake it, and wait for it to take everything if asked to.
    wake_reader();
    if (tx.empty()) return Io::kProgress;
    space_waiter = &this_thread();
    b.fd = -1;
    b.events = 0;
    return Io::kAgain;
  }
  if (tx_fd_ < 0) {
    error = EPIPE;
    return Io::kError;
  }
  iovec v[2];
  int k = tx.data_iov(v);
  for (;;) {
    ssize_t n = ::writev(tx_fd_, v, k);
    if (n >= 0) {
      tx.consume(static_cast<std::size_t>(n));
      if (tx.empty()) return Io::kProgress;
      k = tx.data_iov(v);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      b.fd = tx_fd_;
      b.events = POLLOUT;
      return Io::kAgain;
    }
    error = errno;
    return Io::kError;
  }
}

}  // namespace mnv
