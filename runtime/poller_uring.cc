// runtime/poller_uring.cc — the io_uring poller's loop turn and fd lifecycle (see poller_uring.h for
// the design): interest() and forget() record changes, wait() turns them into SQEs, submits them
// with the wait in one io_uring_enter, and hands each CQE to its concern: readiness polls here,
// completion-mode transfers (poller_uring_transfer.cc), multishot receives
// (poller_uring_multishot.cc). Setup is in poller_uring_setup.cc.

#include "runtime/poller_uring.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "mem/log.h"
#include "runtime/clock.h"
#include "runtime/poller_uring_cqe.h"
#include "runtime/wake_fd.h"

namespace mnv {

using namespace uring;

void IoUringPoller::mark_dirty(int fd, FdState& s) {
  if (s.dirty) return;
  MNV_ASSERT(dirty_count_ < max_fds_);
  s.dirty = true;
  dirty_[dirty_count_++] = fd;
}

void IoUringPoller::interest(int fd, std::uint32_t events) {
  MNV_ASSERT((events & ~kInterestBits) == 0);
  FdState& s = state(fd);
  s.interest = events;
  if (s.exact) {
    refresh(fd, s);
    return;
  }
  if (events == 0 && !s.live && !s.add_pending) return;
  arm(fd, s, kInputMask | (events & POLLOUT));
}

// Has fd's poll watch `mask` (non-zero): an add when none is live or pending, else an update
// when the mask changed (a pending add just picks up the new mask).
void IoUringPoller::arm(int fd, FdState& s, std::uint32_t mask) {
  if (!s.live && !s.add_pending) {
    s.add_pending = true;
    s.mask = mask;
    mark_dirty(fd, s);
    return;
  }
  if (mask == s.mask) return;
  s.mask = mask;
  if (s.live) {
    s.update_pending = true;
    mark_dirty(fd, s);
  }
}

void IoUringPoller::forget(int fd) {
  FdState& s = state(fd);
  // The caller is about to close fd and free the buffers: nothing may use them afterwards.
  // (A socket cancels and detaches its own transfers before it closes its fd.)
  if (s.xfer != nullptr) {
    for (bool send : {false, true}) {
      Transfer& t = send ? s.xfer->tx : s.xfer->rx;
      if (t.phase == Transfer::Phase::kInFlight) cancel_in_flight(io_data(send, t.seq, fd));
      t.phase = Transfer::Phase::kIdle;
    }
    s.xfer = nullptr;
  }
  s.exact = false;
  if (s.fixed) {  // the registered table holds a reference to the file: drop it before close()
    int none = -1;
    int r;
    do {
      r = io_uring_register_files_update(&ring_, static_cast<unsigned>(fd), &none, 1);
    } while (r == -EINTR);
    MNV_ASSERT(r == 1);
    s.fixed = false;
  }
  // A multishot receive: stop it (its CQEs are stale from here on) and give its buffers back.
  if (s.ms_state == kMsLive) {
    s.ms_cancel_pending = true;
    s.ms_stale = s.ms_gen;
    mark_dirty(fd, s);
  }
  s.ms_state = kMsIdle;
  s.ms_arm_pending = false;
  s.ms_rearm = false;
  s.ms_starved = false;
  s.ms_gen = (s.ms_gen + 1) & kSeqMask;
  for (std::uint32_t b = s.rx_first; b != 0;) {
    std::uint32_t next = rx_meta_[b - 1].next;
    recycle(b - 1);
    b = next;
  }
  s.rx_first = s.rx_last = 0;
  s.rx_count = 0;
  s.rx_ended = false;
  if (s.rx_lent != 0) {  // its socket is gone (or will not read it any more)
    recycle(s.rx_lent - 1u);
    s.rx_lent = 0;
  }
  if (s.live) {
    // A live registration is only created by a flush, which first submits any older removal.
    MNV_ASSERT(!s.remove_pending);
    s.remove_pending = true;
    s.stale_gen = s.gen;
    mark_dirty(fd, s);
  }
  s.live = false;
  s.add_pending = false;  // an add never submitted needs no removal
  s.update_pending = false;
  s.interest = 0;
  s.gen = (s.gen + 1) & kGenMask;  // from here on, CQEs of the old registration are stale
}

io_uring_sqe* IoUringPoller::prep_wake_poll() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  MNV_ASSERT(sqe != nullptr);  // callers make room first
  io_uring_prep_poll_multishot(sqe, wake_fd_, POLLIN);
  io_uring_sqe_set_data64(sqe, user_data(kWake, 0, 0));
  return sqe;
}

// Turns recorded changes into SQEs. When the SQ fills up, submits what it has (without waiting)
// and goes on; an fd leaves the dirty list only once all its SQEs are prepared.
int IoUringPoller::flush_changes() {
  for (;;) {
    if (rx_adds_ > 0) {  // buffers given back since the last wait: the kernel may use them now
      io_uring_buf_ring_advance(rx_ring_, static_cast<int>(rx_adds_));
      rx_adds_ = 0;
    }
    // Receives that ran out of buffers: armed again once a share has come back (not at once,
    // or each would only fail again).
    if (starved_count_ > 0 && rx_count_ - rx_held_ >= (rx_count_ >= 8 ? rx_count_ / 8 : 1)) {
      while (starved_count_ > 0) {
        int fd = starved_[--starved_count_];
        FdState& s = fds_[fd];
        if (!s.ms_starved) continue;
        s.ms_starved = false;
        ++nobufs_rearms_;
        ms_arm(fd, s);
      }
    }
    unsigned needed = wake_add_pending_ ? 1 : (dirty_count_ > 0 ? 4 : 0);
    if (needed == 0) return 0;
    while (io_uring_sq_space_left(&ring_) < needed) {
      int r = io_uring_submit(&ring_);
      if (r < 0) return r;
      if (r == 0) return -EAGAIN;
    }
    if (wake_add_pending_) {
      prep_wake_poll();
      wake_add_pending_ = false;
      continue;
    }
    int fd = dirty_[--dirty_count_];
    FdState& s = fds_[fd];
    MNV_ASSERT(s.dirty);
    s.dirty = false;
    if (s.remove_pending) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_poll_remove(sqe, user_data(kPoll, s.stale_gen, fd));
      io_uring_sqe_set_data64(sqe, user_data(kIgnore, 0, 0));
      s.remove_pending = false;
    }
    if (s.update_pending && s.live) {
      // A new mask: the live poll is removed and a new one added (below), not updated in place.
      // An IORING_OP_POLL_REMOVE update of a multishot poll's events lost the POLLOUT wake-up of
      // a socket whose send buffer had filled (readiness mode, 6.18: the writer waited forever);
      // a fresh poll checks the fd's state when it is armed, so nothing is missed, and the old
      // one's CQEs still to come are stale (its generation is left behind).
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_poll_remove(sqe, user_data(kPoll, s.gen, fd));
      io_uring_sqe_set_data64(sqe, user_data(kIgnore, 0, 0));
      s.gen = (s.gen + 1) & kGenMask;
      s.add_pending = true;
    }
    s.update_pending = false;
    if (s.add_pending) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_poll_multishot(sqe, fd, s.mask);
      io_uring_sqe_set_data64(sqe, user_data(kPoll, s.gen, fd));
      s.add_pending = false;
      s.live = true;
    }
    if (s.ms_cancel_pending) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_cancel64(sqe, ms_data(s.ms_stale, fd), 0);
      io_uring_sqe_set_data64(sqe, user_data(kIgnore, 0, 0));
      s.ms_cancel_pending = false;
    }
    if (s.ms_arm_pending) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
      use_fixed(sqe, fd, s);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = kBufGroup;
      io_uring_sqe_set_data64(sqe, ms_data(s.ms_gen, fd));
      s.ms_arm_pending = false;
      s.ms_state = kMsLive;
    }
  }
}

// Submits everything prepared and waits for at least one CQE, in one io_uring_enter.
int IoUringPoller::enter(std::int64_t timeout_ns) {
  if (timeout_ns == 0) return io_uring_submit_and_get_events(&ring_);
  io_uring_cqe* cqe = nullptr;
  if (timeout_ns < 0) return io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, nullptr, nullptr);
  __kernel_timespec ts;
  ts.tv_sec = timeout_ns / 1000000000;
  ts.tv_nsec = timeout_ns % 1000000000;
  return io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
}

// Handles one CQE. False, with nothing changed, when it would need a slot and out is full.
bool IoUringPoller::handle(const io_uring_cqe* cqe, PollEvent* out, int max, int* n, bool* woke) {
  std::uint64_t data = io_uring_cqe_get_data64(cqe);
  bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  switch (kind_of(data)) {
    case kIgnore:
      return true;
    case kWake:
      *woke = true;
      if (!more) wake_add_pending_ = true;
      return true;
    case kPoll:
      break;
    case kIo:
      return handle_transfer(data, cqe, out, max, n);
    default:
      panic("mnv: io_uring CQE with unknown user_data %#llx", static_cast<unsigned long long>(data));
  }

  int fd = fd_of(data);
  FdState& s = state(fd);
  if (gen_of(data) != s.gen) return true;  // forgotten since: the old file's event
  MNV_ASSERT(s.live);

  std::uint32_t events = 0;
  if (cqe->res >= 0) {
    events = static_cast<std::uint32_t>(cqe->res) & kReported;
  } else if (cqe->res != -ECANCELED) {
    events = POLLERR;  // e.g. EBADF: the op that waits retries and sees its own error
  }
  if (events != 0 && !report(fd, s, events, out, max, n)) return false;
  if (!more) {  // the multishot poll ended
    s.live = false;
    s.update_pending = false;
    std::uint32_t mask = s.exact ? exact_mask(s) : s.interest;
    if (mask != 0) {
      if (s.exact) s.mask = mask;
      s.add_pending = true;
      mark_dirty(fd, s);
      ++rearms_;
    }
  }
  return true;
}

// Adds `events` to fd's entry in out (one entry per fd and wait()); false if out is full.
bool IoUringPoller::report(int fd, FdState& s, std::uint32_t events, PollEvent* out, int max, int* n) {
  if (s.out_seq == wait_seq_) {
    out[s.out_slot].events |= events;
    return true;
  }
  if (*n == max) return false;
  s.out_seq = wait_seq_;
  s.out_slot = *n;
  out[(*n)++] = PollEvent{fd, events};
  return true;
}

int IoUringPoller::reap(PollEvent* out, int max, bool* woke) {
  int n = 0;
  unsigned head;
  unsigned seen = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    if (!handle(cqe, out, max, &n, woke)) break;  // the rest waits for the next wait()
    ++seen;
  }
  io_uring_cq_advance(&ring_, seen);
  counts_.completed += seen;
  counts_.submitted += ring_.sq.sqe_head - sq_counted_;  // (what every submit since the last reap took)
  sq_counted_ = ring_.sq.sqe_head;
  if (*woke) drain_wake_fd(wake_fd_);
  return n;
}

int IoUringPoller::wait(std::int64_t timeout_ns, PollEvent* out, int max) {
  MNV_ASSERT(max > 0 && timeout_ns >= -1);
  ++wait_seq_;
  std::int64_t deadline = 0;
  if (timeout_ns > 0) {  // saturating: callers pass "far away" as a huge timeout
    std::int64_t start = monotonic_ns();
    deadline = timeout_ns > INT64_MAX - start ? INT64_MAX : start + timeout_ns;
  }
  std::int64_t left = timeout_ns;
  for (;;) {
    int r = flush_changes();
    if (r >= 0) r = enter(left);
    bool woke = false;
    int n = reap(out, max, &woke);
    if (n > 0 || woke) return n;
    if (r < 0 && r != -ETIME) return r;  // EINTR included
    if (timeout_ns == 0 || r == -ETIME) return 0;
    // Only stale or removal CQEs arrived: wait again for what is left of the timeout.
    if (timeout_ns > 0) {
      left = deadline - monotonic_ns();
      if (left <= 0) return 0;
    }
  }
}

void IoUringPoller::wake() {
  signal_wake_fd(wake_fd_);  // (async-signal-safe: the kernel wakes pollers from its SIGTERM handler)
}

}  // namespace mnv
