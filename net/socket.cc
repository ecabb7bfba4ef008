#include "net/socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <new>
#include <utility>

#include "mem/heap.h"
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
    tx_peer_->rx_eof_ = true;
    ready_if_blocked(data_waiter_);
  }
  if (rx_peer_ != nullptr) {  // our writer sees EPIPE
    rx_peer_->tx_peer_ = nullptr;
    rx_peer_->error_ = EPIPE;
    ready_if_blocked(rx_peer_->space_waiter_);
    ready_if_blocked(rx_peer_->data_waiter_);
  }
  close_owned_fd(rx_fd_);
  if (tx_fd_ != rx_fd_ && owns_tx_fd_) close_owned_fd(tx_fd_);
  if (gather_ != nullptr) Heap::owner(gather_)->free(gather_);  // (pieces never sent are dropped)
}

bool Socket::add_static(const void* p, std::size_t n) {
  if (error_ != 0 || hung_up_ || tx_peer_ != nullptr || tx_fd_ < 0 || n == 0 || n > UINT32_MAX) return false;
  if (gather_ == nullptr) {
    void* mem = this_process().heap().allocate(sizeof(GatherList));
    if (mem == nullptr) return false;
    gather_ = new (mem) GatherList();
  }
  if (gather_->full()) return false;
  gather_->add(static_cast<const char*>(p), static_cast<std::uint32_t>(n), tx_.size());
  return true;
}

void Socket::release_gather_list() {
  if (gather_ == nullptr || !gather_->empty() || xfer_.tx.busy()) return;
  Heap::owner(gather_)->free(gather_);
  gather_ = nullptr;
}

void Socket::bind_fd(int fd) {
  MNV_ASSERT(!xfer_.rx.busy() && !xfer_.tx.busy());
  if (rx_.lent()) {
    rx_.consume(rx_.size());  // (another connection's bytes)
    rx_.end_loan();
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
    (send ? tx_ : rx_).unpin();
  }
  cio_->detach(rx_fd_, &xfer_);
}

bool Socket::settle_send() {
  std::int32_t r = xfer_.tx.take();
  tx_.unpin();
  if (r >= 0) {
    consume_sent(static_cast<std::size_t>(r));
    return true;
  }
  if (r == -ENOTSOCK) {  // the bytes are still in tx; writev sends them
    not_a_socket();
    return true;
  }
  if (error_ == 0) error_ = -r;
  return false;
}

void Socket::return_loan() {
  if (rx_loan_ == 0) return;
  cio_->give_back(rx_fd_, rx_loan_);
  rx_loan_ = 0;
}

void Socket::not_a_socket() {
  // readv/writev from now on; a transfer still out in the other direction (it fails the same
  // way) is cancelled. (Readiness has not been seen yet: the first readv is made.)
  not_socket_ = true;
  rx_drained_ = false;
  cancel_transfers();
}

void Socket::pipe(Socket& from, Socket& to) {
  MNV_ASSERT(from.gather_ == nullptr || from.gather_->empty());  // (static output goes to fds only)
  from.tx_peer_ = &to;
  from.tx_fd_ = -1;
  to.rx_peer_ = &from;
  to.rx_fd_ = -1;
}

void Socket::insert_after(Socket& child) {
  MNV_ASSERT(gather_ == nullptr || gather_->empty());  // (flushed before a pipeline child goes in)
  Socket* old_peer = tx_peer_;
  set_tx_peer(&child);
  if (old_peer != nullptr) {
    child.set_tx_peer(old_peer);
    child.data_waiter_ = std::exchange(data_waiter_, nullptr);  // its reader now pulls from child
  } else {
    child.tx_fd_ = tx_fd_;  // borrowed: this socket owns (and closes) it
    child.owns_tx_fd_ = false;
  }
}

void Socket::hup() {
  if (hung_up_) return;
  hung_up_ = true;
  if (tx_peer_ != nullptr) {
    wake_reader();
  } else if (tx_fd_ >= 0) {
    ::shutdown(tx_fd_, SHUT_WR);
  }
}

void Socket::rx_close() {
  rx_closed_ = true;
  rx_.consume(rx_.size());
  if (rx_fd_ >= 0 && rx_peer_ == nullptr) ::shutdown(rx_fd_, SHUT_RD);
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
  Transfer& recv = s->xfer_.rx;
  if (recv.busy() && !recv.done() && s->rx_.empty()) {
    s->cio_->cancel(s->rx_fd_, &s->xfer_, false);
    if (!recv.busy()) s->rx_.unpin();
  }
  // A lent receive buffer goes back to the poller; bytes left in it move into the ring.
  if (s->rx_.lent() && s->rx_.end_loan()) s->return_loan();
  s->release_idle_rings();
}

void Socket::wake_reader() { ready_if_blocked(data_waiter_); }
void Socket::wake_writer() { ready_if_blocked(space_waiter_); }

// The result r of a receive the poller made into the rx ring: bytes (committed), the end of
// input, or an error, in *io. False when rx_fd_ is no socket (ENOTSOCK): it is then read with
// readv from now on (not_a_socket()), and fill() goes on to do that.
bool Socket::received(std::int32_t r, Io* io) {
  if (r > 0) {
    rx_.commit(static_cast<std::size_t>(r));
    *io = Io::kProgress;
  } else if (r == 0) {
    rx_eof_ = true;
    *io = Io::kEof;
  } else if (r != -ENOTSOCK) {
    error_ = -r;
    *io = Io::kError;
  } else {
    not_a_socket();
    return false;
  }
  return true;
}

namespace {
// What a fill() waiting for input on fd waits on.
Socket::Io wait_input(Block& b, int fd) {
  b.fd = fd;
  b.events = POLLIN | POLLRDHUP;
  return Socket::Io::kAgain;
}
}  // namespace

// ---- fill(): one function per transport --------------------------------------------------

Socket::Io Socket::fill(Block& b) {
  if (error_ != 0) return Io::kError;
  if (rx_eof_ || rx_closed_) return Io::kEof;
  if (rx_peer_ != nullptr) return fill_from_peer(b);
  if (rx_fd_ < 0) {
    rx_eof_ = true;
    return Io::kEof;
  }
  if (rx_multishot()) return fill_multishot(b);
  if (completion()) return fill_by_receive(b);
  return fill_by_readv(b);
}

// A socket peer: pull straight from its send ring; wait (in-process, no fd) until it writes.
Socket::Io Socket::fill_from_peer(Block& b) {
  if (!rx_.ensure()) {
    error_ = ENOMEM;
    return Io::kError;
  }
  if (rx_.full()) return Io::kProgress;
  Socket& src = *rx_peer_;
  if (src.tx_.move_to(rx_, rx_.space()) > 0) {
    src.wake_writer();
    return Io::kProgress;
  }
  if (src.hung_up_) {
    rx_eof_ = true;
    return Io::kEof;
  }
  src.data_waiter_ = &this_thread();
  b.fd = -1;
  b.events = 0;
  return Io::kAgain;
}

// Completion mode, multishot receive: the input is in the poller's buffers. An empty rx reads
// the oldest one in place; else the bytes are copied into the ring's free space.
Socket::Io Socket::fill_multishot(Block& b) {
  // Done with a lent buffer (or more is needed after its bytes): what is left of it moves into
  // the ring.
  if (rx_.lent()) {
    if (!rx_.end_loan()) {
      error_ = ENOMEM;
      return Io::kError;
    }
    return_loan();
  }
  // Nothing there: make sure the receive is armed and wait, without touching the ring.
  if (!cio_->recv_queued(rx_fd_)) {
    cio_->arm_recv(rx_fd_);
    return wait_input(b, rx_fd_);
  }
  // The reply to what the peer sent before has usually gone by now: settle its send, so the
  // next reply starts at the front of an empty send ring.
  if (xfer_.tx.done()) settle_send();
  std::int32_t r;
  if (rx_.empty()) {
    // Read the oldest buffer in place: no copy, and the ring's own memory is not touched.
    const char* data;
    std::uint32_t len;
    if ((rx_loan_ = cio_->lend_recv(rx_fd_, &data, &len)) != 0) {
      rx_.lend(data, len);
      keep_rings_until_idle();  // a process that goes idle gives the buffer back
      return Io::kProgress;
    }
    r = cio_->take_recv(rx_fd_, nullptr, 0);  // only the end of input is queued
  } else {
    if (rx_.full()) return Io::kProgress;
    iovec v[2];
    int k = rx_.space_iov(v);
    r = cio_->take_recv(rx_fd_, v, k);
  }
  if (Io io; received(r, &io)) return io;
  return fill_by_readv(b);  // not a socket
}

// Completion mode, one receive at a time into the ring's free space (pinned while it is out).
Socket::Io Socket::fill_by_receive(Block& b) {
  if (!rx_.ensure()) {
    error_ = ENOMEM;
    return Io::kError;
  }
  if (xfer_.rx.busy()) {  // a receive is on its way
    if (!xfer_.rx.done()) return wait_input(b, rx_fd_);
    std::int32_t r = xfer_.rx.take();
    rx_.unpin();
    // The reply to what the peer sent before has usually gone by now: settle its send, so the
    // next reply starts at the front of an empty send ring (the same few cache lines each time)
    // instead of after the sent bytes.
    if (xfer_.tx.done()) settle_send();
    if (r > 0) rx_drained_ = !xfer_.rx.more;
    if (Io io; received(r, &io)) return io;
    return fill_by_readv(b);  // not a socket
  }
  if (rx_.full()) return Io::kProgress;
  // Receive into the free space (its first piece) when the kernel next waits; if the last
  // receive left the socket empty, wait for data before trying.
  iovec v[2];
  rx_.space_iov(v);
  cio_->recv(rx_fd_, &xfer_, v[0].iov_base, static_cast<std::uint32_t>(v[0].iov_len), rx_drained_);
  rx_.pin();
  return wait_input(b, rx_fd_);
}

// Readiness: readv(2) into the free space; after a short read, wait for a readiness event first.
Socket::Io Socket::fill_by_readv(Block& b) {
  if (!rx_.ensure()) {
    error_ = ENOMEM;
    return Io::kError;
  }
  if (rx_.full()) return Io::kProgress;
  if (rx_drained_) return wait_input(b, rx_fd_);
  iovec v[2];
  int k = rx_.space_iov(v);
  for (;;) {
    ssize_t n = ::readv(rx_fd_, v, k);
    if (n > 0) {
      rx_drained_ = static_cast<std::size_t>(n) < rx_.space() && !rx_hup_;
      rx_.commit(static_cast<std::size_t>(n));
      Kernel::count_bytes_in(static_cast<std::size_t>(n));
      return Io::kProgress;
    }
    if (n == 0) {
      rx_eof_ = true;
      return Io::kEof;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return wait_input(b, rx_fd_);
    error_ = errno;
    return Io::kError;
  }
}

// ---- drain(): one function per transport -------------------------------------------------

Socket::Io Socket::drain(Block& b) {
  if (error_ != 0) return Io::kError;
  if (xfer_.tx.busy()) return drain_by_send(b);  // a send is on its way
  if (!has_output()) return Io::kProgress;
  if (tx_peer_ != nullptr) return drain_to_peer(b);
  if (tx_fd_ < 0) {
    error_ = EPIPE;
    return Io::kError;
  }
  if (tx_completion()) return drain_by_send(b);
  return drain_by_writev(b);
}

// A socket peer pulls: wake it, and wait (in-process) for it to take everything if asked to.
Socket::Io Socket::drain_to_peer(Block& b) {
  wake_reader();
  if (tx_.empty()) return Io::kProgress;
  space_waiter_ = &this_thread();
  b.fd = -1;
  b.events = 0;
  return Io::kAgain;
}

// Completion mode: one send of all of tx's data (pinned while it is out), made when the kernel
// next waits; kInFlight until it has finished.
Socket::Io Socket::drain_by_send(Block& b) {
  if (xfer_.tx.busy()) {
    if (!xfer_.tx.done()) {
      b.fd = tx_fd_;
      b.events = POLLOUT;
      return Io::kInFlight;
    }
    if (!settle_send()) return Io::kError;
    return drain(b);  // what is left goes the way that applies now (writev if not a socket)
  }
  if (gather_ != nullptr && !gather_->empty()) {  // static pieces: the whole output in one sendmsg
    SendVector& sv = gather_->send_vector();
    sv.count = gather_->gather(tx_, sv.iov);
    cio_->send_vector(tx_fd_, &xfer_, &sv);
  } else {
    iovec v[2];
    int k = tx_.data_iov(v);
    cio_->send(tx_fd_, &xfer_, v, k);
  }
  tx_.pin();
  b.fd = tx_fd_;
  b.events = POLLOUT;
  return Io::kInFlight;
}

// Readiness: writev(2) until tx is empty or the fd would block.
Socket::Io Socket::drain_by_writev(Block& b) {
  iovec v[GatherList::kMaxIov];
  int k = output_iov(v);
  for (;;) {
    ssize_t n = ::writev(tx_fd_, v, k);
    if (n >= 0) {
      consume_sent(static_cast<std::size_t>(n));
      Kernel::count_bytes_out(static_cast<std::size_t>(n));
      if (!has_output()) return Io::kProgress;
      k = output_iov(v);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      b.fd = tx_fd_;
      b.events = POLLOUT;
      return Io::kAgain;
    }
    error_ = errno;
    return Io::kError;
  }
}

}  // namespace mnv
