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
  cancel_transfers();  // the rings are freed below: the OS must be done with them
  return_loan();
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

void Socket::bind_fd(int fd) {
  MNV_ASSERT(!xfer_.rx.busy() && !xfer_.tx.busy());
  if (rx.lent()) {
    rx.consume(rx.size());  // (another connection's bytes)
    rx.end_loan();
  }
  return_loan();
  if (cio_ != nullptr) cio_->detach(rx_fd_, &xfer_);
  rx_fd_ = tx_fd_ = fd;
  Kernel* k = Kernel::current();
  cio_ = k != nullptr ? k->completion_io() : nullptr;
  not_socket_ = false;
}

void Socket::cancel_transfers() {
  if (cio_ == nullptr) return;
  for (bool send : {false, true}) {
    Transfer& t = send ? xfer_.tx : xfer_.rx;
    if (!t.busy()) continue;
    cio_->cancel(send ? tx_fd_ : rx_fd_, &xfer_, send);  // the OS is done with the ring
    t.phase = Transfer::Phase::kIdle;                    // a result still due is dropped
    (send ? tx : rx).unpin();
  }
  cio_->detach(rx_fd_, &xfer_);
}

bool Socket::settle_send() {
  std::int32_t r = xfer_.tx.take();
  tx.unpin();
  if (r >= 0) {
    tx.consume(static_cast<std::size_t>(r));
    return true;
  }
  if (r == -ENOTSOCK) {  // the bytes are still in tx; writev sends them
    not_a_socket();
    return true;
  }
  if (error == 0) error = -r;
  return false;
}

void Socket::return_loan() {
  if (rx_loan_ == 0) return;
  cio_->give_back(rx_fd_, rx_loan_);
  rx_loan_ = 0;
}

void Socket::not_a_socket() {
  // readv/writev from now on; a transfer still out in the other direction (it fails the same
  // way) is cancelled.
  not_socket_ = true;
  cancel_transfers();
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
  if (s->xfer_.tx.done()) s->settle_send();  // it finished while the thread waited for input;
                                             // an error is seen when the thread next runs
  // A receive waiting for input pins the rx ring; cancel it so the ring can go (the thread's
  // wait falls back to a readiness watch). One that already finished keeps its data.
  Transfer& rx = s->xfer_.rx;
  if (rx.busy() && !rx.done() && s->rx.empty()) {
    s->cio_->cancel(s->rx_fd_, &s->xfer_, false);
    if (!rx.busy()) s->rx.unpin();
  }
  // A lent receive buffer goes back to the poller; bytes left in it move into the ring.
  if (s->rx.lent() && s->rx.end_loan()) s->return_loan();
  s->release_idle_rings();
}

void Socket::wake_reader() { ready_if_blocked(data_waiter); }
void Socket::wake_writer() { ready_if_blocked(space_waiter); }

// The result r of a receive the poller made into the rx ring: bytes (committed), the end of
// input, or an error, in *io. False when rx_fd_ is no socket (ENOTSOCK): it is then read with
// readv from now on (not_a_socket()), and fill() goes on to do that.
bool Socket::received(std::int32_t r, Io* io) {
  if (r > 0) {
    rx.commit(static_cast<std::size_t>(r));
    *io = Io::kProgress;
  } else if (r == 0) {
    rx_eof = true;
    *io = Io::kEof;
  } else if (r != -ENOTSOCK) {
    error = -r;
    *io = Io::kError;
  } else {
    not_a_socket();
    return false;
  }
  return true;
}

Socket::Io Socket::fill(Block& b) {
  if (error != 0) return Io::kError;
  if (rx_eof || rx_closed) return Io::kEof;
  if (rx_multishot()) {
    // Completion mode with a multishot receive: the input is in the poller's buffers. Done with
    // a lent buffer (or more is needed after its bytes): what is left of it moves into the ring.
    if (rx.lent()) {
      if (!rx.end_loan()) {
        error = ENOMEM;
        return Io::kError;
      }
      return_loan();
    }
    // Nothing there: make sure the receive is armed and wait, without touching the ring.
    if (!cio_->recv_queued(rx_fd_)) {
      cio_->arm_recv(rx_fd_);
      b.fd = rx_fd_;
      b.events = POLLIN | POLLRDHUP;
      return Io::kAgain;
    }
    // The reply to what the peer sent before has usually gone by now: settle its send, so the
    // next reply starts at the front of an empty send ring.
    if (xfer_.tx.done()) settle_send();
    std::int32_t r;
    if (rx.empty()) {
      // Read the oldest buffer in place: no copy, and the ring's own memory is not touched.
      const char* data;
      std::uint32_t len;
      if ((rx_loan_ = cio_->lend_recv(rx_fd_, &data, &len)) != 0) {
        rx.lend(data, len);
        keep_rings_until_idle();  // a process that goes idle gives the buffer back
        return Io::kProgress;
      }
      r = cio_->take_recv(rx_fd_, nullptr, 0);  // only the end of input is queued
    } else {
      if (rx.full()) return Io::kProgress;
      iovec v[2];
      int k = rx.space_iov(v);
      r = cio_->take_recv(rx_fd_, v, k);
    }
    if (Io io; received(r, &io)) return io;
  }
  if (!rx.ensure()) {
    error = ENOMEM;
    return Io::kError;
  }
  if (xfer_.rx.busy()) {  // completion mode: a receive is on its way
    if (!xfer_.rx.done()) {
      b.fd = rx_fd_;
      b.events = POLLIN | POLLRDHUP;
      return Io::kAgain;
    }
    std::int32_t r = xfer_.rx.take();
    rx.unpin();
    // The reply to what the peer sent before has usually gone by now: settle its send, so the
    // next reply starts at the front of an empty send ring (the same few cache lines each time)
    // instead of after the sent bytes.
    if (xfer_.tx.done()) settle_send();
    if (r > 0) rx_drained = !xfer_.rx.more;
    if (Io io; received(r, &io)) return io;
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
  if (completion()) {
    // Receive into the free space (its first piece) when the kernel next waits; if the last
    // receive left the socket empty, wait for data before trying.
    iovec v[2];
    rx.space_iov(v);
    cio_->recv(rx_fd_, &xfer_, v[0].iov_base, static_cast<std::uint32_t>(v[0].iov_len), rx_drained);
    rx.pin();
    b.fd = rx_fd_;
    b.events = POLLIN | POLLRDHUP;
    return Io::kAgain;
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
  if (xfer_.tx.busy()) {  // completion mode: a send is on its way
    if (!xfer_.tx.done()) {
      b.fd = tx_fd_;
      b.events = POLLOUT;
      return Io::kInFlight;
    }
    if (!settle_send()) return Io::kError;
  }
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
  if (tx_completion()) {  // send it all when the kernel next waits
    cio_->send(tx_fd_, &xfer_, v, k);
    tx.pin();
    b.fd = tx_fd_;
    b.events = POLLOUT;
    return Io::kInFlight;
  }
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
