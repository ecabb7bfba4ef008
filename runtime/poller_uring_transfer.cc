// runtime/poller_uring_transfer.cc — completion mode of the io_uring poller (runtime/completion_io.h):
// a socket's receive and send as SQEs of their own, their CQEs written into the socket's
// Transfers and reported once (kTransferDone), synchronous cancellation, the registered file
// table, and the "exact" readiness watch of an fd whose transfers stand in for its poll.

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "mem/critical_section.h"
#include "mem/log.h"
#include "runtime/poller_uring.h"
#include "runtime/poller_uring_cqe.h"

namespace mnv {

using namespace uring;

// A transfer's CQE. Like handle(): false, with nothing changed, when out is full.
bool IoUringPoller::handle_transfer(std::uint64_t data, const io_uring_cqe* cqe, PollEvent* out, int max, int* n) {
  if ((gen_of(data) & kMulti) != 0) return handle_multishot(data, cqe, out, max, n);
  int fd = fd_of(data);
  bool is_send = (gen_of(data) & kSend) != 0;
  FdState& s = state(fd);
  // (Bytes are counted where a CQE is consumed: also for a socket whose process is gone.)
  std::uint64_t& bytes = is_send ? counts_.bytes_out : counts_.bytes_in;
  std::uint64_t moved = cqe->res > 0 ? static_cast<std::uint64_t>(cqe->res) : 0;
  if (s.xfer == nullptr) {  // forgotten or detached
    bytes += moved;
    return true;
  }
  Transfer& t = is_send ? s.xfer->tx : s.xfer->rx;
  if (t.phase != Transfer::Phase::kInFlight || t.seq != (gen_of(data) & kSeqMask)) {  // dropped
    bytes += moved;
    return true;
  }
  std::int32_t res = cqe->res;
  if (!is_send) {
    if (res == -EAGAIN || res == -EINTR) {  // not expected from a socket: try again, waiting for data
      io_uring_sqe* sqe = next_sqe();
      io_uring_prep_recv(sqe, fd, t.iov[0].iov_base, t.iov[0].iov_len, 0);
      use_fixed(sqe, fd, s);
      sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
      io_uring_sqe_set_data64(sqe, data);
      return true;
    }
    if (!report(fd, s, kTransferDone, out, max, n)) return false;
    bytes += moved;
    t.res = res;
    t.more = (cqe->flags & IORING_CQE_F_SOCK_NONEMPTY) != 0;
    t.phase = Transfer::Phase::kDone;
    return true;
  }
  if (t.vec != nullptr && (res > 0 || res == -EAGAIN || res == -EINTR)) {  // a gathered send
    std::uint32_t sent = res > 0 ? static_cast<std::uint32_t>(res) : 0;
    t.total += sent;
    msghdr& m = t.vec->msg;
    while (sent > 0) {  // what was sent leaves the front of the pieces
      MNV_ASSERT(m.msg_iovlen > 0);
      iovec& front = m.msg_iov[0];
      std::uint32_t k = sent < front.iov_len ? sent : static_cast<std::uint32_t>(front.iov_len);
      front.iov_base = static_cast<char*>(front.iov_base) + k;
      front.iov_len -= k;
      sent -= k;
      if (front.iov_len == 0) {
        ++m.msg_iov;
        --m.msg_iovlen;
      }
    }
    if (m.msg_iovlen > 0) {  // a short send: the rest goes on
      bytes += moved;
      prep_sendmsg(fd, s, t);
      return true;
    }
    res = static_cast<std::int32_t>(t.total);
  } else if (res > 0 || res == -EAGAIN || res == -EINTR) {
    std::uint32_t sent = res > 0 ? static_cast<std::uint32_t>(res) : 0;
    std::uint32_t left = static_cast<std::uint32_t>(t.iov[t.index].iov_len) - t.offset;
    MNV_ASSERT(sent <= left);
    if (sent < left || t.index + 1 < t.count) {  // a short send, or the next piece: go on
      bytes += moved;
      if (sent < left) {
        t.offset += sent;
      } else {
        t.total += sent + t.offset;
        ++t.index;
        t.offset = 0;
      }
      prep_send(fd, s, t);
      return true;
    }
    res = static_cast<std::int32_t>(t.total + t.offset + sent);
  } else if (res == 0) {
    res = -EPIPE;  // a stream socket that takes nothing will not take the rest either
  }
  std::uint32_t events = res < 0 || (s.interest & POLLOUT) != 0 ? kTransferDone : 0u;
  if (events != 0 && !report(fd, s, events, out, max, n)) return false;
  bytes += moved;
  t.res = res;
  t.phase = Transfer::Phase::kDone;
  return true;
}

// What an exact fd's poll must watch: the interest that no busy transfer stands in for (a
// receive is the watch on input, a send the watch on output).
std::uint32_t IoUringPoller::exact_mask(const FdState& s) {
  std::uint32_t need = s.interest;
  if (s.xfer != nullptr) {
    if (s.xfer->rx.phase == Transfer::Phase::kInFlight) need &= ~(POLLIN | POLLRDHUP);
    if (s.xfer->tx.phase == Transfer::Phase::kInFlight) need &= ~POLLOUT;
  }
  if (ms_covers_input(s)) need &= ~(POLLIN | POLLRDHUP);
  return (need & (POLLIN | POLLRDHUP) ? kInputMask : 0) | (need & POLLOUT);
}

// Brings an exact fd's poll to exact_mask(): adds, updates or removes it. A removal bumps the
// generation, so the removed poll's last CQE is stale even if a new poll follows at once.
void IoUringPoller::refresh(int fd, FdState& s) {
  std::uint32_t mask = exact_mask(s);
  if (mask == 0) {
    s.add_pending = false;
    if (s.live) {
      MNV_ASSERT(!s.remove_pending);
      s.remove_pending = true;
      s.stale_gen = s.gen;
      s.gen = (s.gen + 1) & kGenMask;
      s.live = false;
      s.update_pending = false;
      mark_dirty(fd, s);
    }
    return;
  }
  arm(fd, s, mask);
}

// An SQE for a transfer, now: a full SQ is submitted first (without waiting).
io_uring_sqe* IoUringPoller::next_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    int r = io_uring_submit(&ring_);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) panic("mnv: io_uring submit: %s", strerror(-r));
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

// Makes sqe name fd through the registered file table, registering fd there first if needed
// (slot fd; a failed registration leaves the plain fd).
void IoUringPoller::use_fixed(io_uring_sqe* sqe, int fd, FdState& s) {
  if (!fixed_files_) return;
  if (!s.fixed) {
    int r;
    do {
      r = io_uring_register_files_update(&ring_, static_cast<unsigned>(fd), &fd, 1);
    } while (r == -EINTR);
    if (r != 1) return;
    s.fixed = true;
  }
  sqe->flags |= IOSQE_FIXED_FILE;
}

// Marks t in flight with the fd's next sequence number; an fd's first transfer makes its
// readiness watch exact.
void IoUringPoller::start_transfer(int fd, FdState& s, Transfers* x, Transfer& t) {
  MNV_ASSERT(!t.busy() && (s.xfer == nullptr || s.xfer == x));
  s.xfer = x;
  s.exact = true;
  s.seq = (s.seq + 1) & kSeqMask;
  t.seq = s.seq;
  t.phase = Transfer::Phase::kInFlight;
  if (s.live || s.add_pending) refresh(fd, s);  // the transfer stands in for the poll
}

void IoUringPoller::recv(int fd, Transfers* x, void* buf, std::uint32_t len, bool poll_first) {
  CriticalSection cs;  // (called from micro-threads: see mem/critical_section.h)
  MNV_ASSERT(len > 0);
  FdState& s = state(fd);
  Transfer& t = x->rx;
  start_transfer(fd, s, x, t);
  t.more = false;
  t.iov[0] = iovec{buf, len};
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_recv(sqe, fd, buf, len, 0);
  use_fixed(sqe, fd, s);
  if (poll_first) sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
  io_uring_sqe_set_data64(sqe, io_data(false, t.seq, fd));
}

void IoUringPoller::send(int fd, Transfers* x, const iovec* iov, int n) {
  CriticalSection cs;
  MNV_ASSERT(n >= 1 && n <= 2);
  FdState& s = state(fd);
  Transfer& t = x->tx;
  start_transfer(fd, s, x, t);
  t.vec = nullptr;
  t.iov[0] = iov[0];
  if (n == 2) t.iov[1] = iov[1];
  t.count = static_cast<std::uint8_t>(n);
  t.index = 0;
  t.offset = 0;
  t.total = 0;
  prep_send(fd, s, t);
}

void IoUringPoller::send_vector(int fd, Transfers* x, SendVector* v) {
  CriticalSection cs;
  MNV_ASSERT(v->count >= 1 && v->count <= SendVector::kMaxPieces);
  FdState& s = state(fd);
  Transfer& t = x->tx;
  start_transfer(fd, s, x, t);
  t.vec = v;
  t.total = 0;
  v->msg = msghdr{};
  v->msg.msg_iov = v->iov;
  v->msg.msg_iovlen = static_cast<std::size_t>(v->count);
  prep_sendmsg(fd, s, t);
}

// The SQE that sends what is left of a gathered send's pieces (t.vec->msg names them).
void IoUringPoller::prep_sendmsg(int fd, FdState& s, Transfer& t) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_sendmsg(sqe, fd, &t.vec->msg, MSG_NOSIGNAL | MSG_WAITALL);
  use_fixed(sqe, fd, s);
  io_uring_sqe_set_data64(sqe, io_data(true, t.seq, fd));
}

// The SQE that sends what is left of the current piece. MSG_WAITALL: the kernel itself goes on
// after a short send on a stream socket.
void IoUringPoller::prep_send(int fd, FdState& s, Transfer& t) {
  const iovec& piece = t.iov[t.index];
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_send(sqe, fd, static_cast<char*>(piece.iov_base) + t.offset, piece.iov_len - t.offset,
                     MSG_NOSIGNAL | MSG_WAITALL);
  use_fixed(sqe, fd, s);
  io_uring_sqe_set_data64(sqe, io_data(true, t.seq, fd));
}

// Cancels the submitted request `data` and waits until the kernel is done with it: 0 if it was
// cancelled, -ENOENT if it had already finished (its CQE is, or will be, in the CQ).
int IoUringPoller::cancel_in_flight(std::uint64_t data) {
  // A request whose SQE is still in the SQ cannot be found: submit what is prepared first.
  while (io_uring_sq_ready(&ring_) > 0) {
    int r = io_uring_submit(&ring_);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) panic("mnv: io_uring submit: %s", strerror(-r));
  }
  io_uring_sync_cancel_reg reg{};
  reg.addr = data;
  reg.timeout.tv_sec = -1;
  reg.timeout.tv_nsec = -1;
  int r;
  do {
    r = io_uring_register_sync_cancel(&ring_, &reg);
  } while (r == -EINTR);
  MNV_ASSERT(r == 0 || r == -ENOENT || r == -EALREADY);
  return r;
}

void IoUringPoller::cancel(int fd, Transfers* x, bool send) {
  CriticalSection cs;
  FdState& s = state(fd);
  MNV_ASSERT(s.xfer == x);
  Transfer& t = send ? x->tx : x->rx;
  if (t.phase != Transfer::Phase::kInFlight) return;
  if (cancel_in_flight(io_data(send, t.seq, fd)) != 0) return;  // it finished: its CQE comes
  t.phase = Transfer::Phase::kIdle;
  if (s.exact) refresh(fd, s);  // whoever waits on fd may need a readiness watch now
}

void IoUringPoller::detach(int fd, Transfers* x) {
  CriticalSection cs;
  FdState& s = state(fd);
  if (s.xfer != x) return;
  s.xfer = nullptr;
  // No transfer stands in for the fd's watch any more (e.g. a socket that turned out to be a
  // pipe goes on with readv): whoever waits on it needs its readiness poll now.
  if (s.exact) refresh(fd, s);
}

}  // namespace mnv
