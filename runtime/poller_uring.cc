// runtime/poller_uring.cc — the io_uring poller (see poller_uring.h for the design).
#include "runtime/poller_uring.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "mem/log.h"

namespace mnv {
namespace {

// user_data of every SQE: | tag: 2 bits | generation: 30 bits | fd: 32 bits |. The generation
// wraps after 2^30 forget() calls on one fd, far more than can happen while one old CQE waits.
enum Tag : std::uint64_t { kTagFd = 0, kTagWake = 1, kTagIgnore = 2 };
constexpr std::uint32_t kGenMask = (1u << 30) - 1;

std::uint64_t user_data(Tag tag, std::uint32_t gen, int fd) {
  return (static_cast<std::uint64_t>(tag) << 62) | (static_cast<std::uint64_t>(gen & kGenMask) << 32) |
         static_cast<std::uint32_t>(fd);
}
Tag tag_of(std::uint64_t data) { return static_cast<Tag>(data >> 62); }
std::uint32_t gen_of(std::uint64_t data) { return static_cast<std::uint32_t>(data >> 32) & kGenMask; }
int fd_of(std::uint64_t data) { return static_cast<int>(static_cast<std::uint32_t>(data)); }

// What every fd is registered for, once: the kernel only blocks after EAGAIN (edge-triggered use).
constexpr unsigned kInputMask = POLLIN | POLLRDHUP;  // watched while registered; POLLOUT on demand
constexpr std::uint32_t kInterestBits = POLLIN | POLLOUT | POLLRDHUP;
constexpr std::uint32_t kReported = POLLIN | POLLOUT | POLLRDHUP | POLLERR | POLLHUP;

// The smallest power of two >= n, within [lo, hi].
unsigned pow2_within(std::size_t n, unsigned lo, unsigned hi) {
  unsigned v = lo;
  while (v < n && v < hi) v <<= 1;
  return v;
}

std::int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

std::unique_ptr<IoUringPoller> IoUringPoller::create(std::size_t max_fds, const IoUringOptions& options) {
  MNV_ASSERT(max_fds > 0 && max_fds <= static_cast<std::size_t>(INT_MAX));
  // Up to two SQEs per fd may wait for a submit (remove + add); a full SQ is submitted early.
  unsigned sq = options.sq_entries != 0 ? options.sq_entries : pow2_within(max_fds + 1, 16, 4096);
  // One CQE per fd and loop turn is the common case; an overflow only ends a multishot poll,
  // which is then armed again.
  unsigned cq = options.cq_entries != 0 ? options.cq_entries : pow2_within(2 * max_fds + 2, 2 * sq, 65536);
  MNV_ASSERT(cq >= sq);

  int wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) return nullptr;
  std::unique_ptr<IoUringPoller> poller(new IoUringPoller(max_fds, wake_fd));
  int r = poller->setup(sq, cq, options.defer_taskrun);
  if (r < 0) {
    poller.reset();
    errno = -r;
    return nullptr;
  }
  return poller;
}

IoUringPoller::IoUringPoller(std::size_t max_fds, int wake_fd)
    : wake_fd_(wake_fd), max_fds_(max_fds), fds_(new FdState[max_fds]), dirty_(new int[max_fds]) {}

IoUringPoller::~IoUringPoller() {
  if (ring_ready_) io_uring_queue_exit(&ring_);
  ::close(wake_fd_);
}

int IoUringPoller::setup(unsigned sq_entries, unsigned cq_entries, bool try_defer_taskrun) {
  io_uring_params params{};
  int r = -EINVAL;
  if (try_defer_taskrun) {
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL |
                   IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    params.cq_entries = cq_entries;
    r = io_uring_queue_init_params(sq_entries, &ring_, &params);
    defer_taskrun_ = r == 0;
  }
  if (r == -EINVAL) {  // a kernel before 6.1 rejects the flags it does not know
    params = io_uring_params{};
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    params.cq_entries = cq_entries;
    r = io_uring_queue_init_params(sq_entries, &ring_, &params);
  }
  if (r < 0) return r;
  ring_ready_ = true;
  // One io_uring_enter per wait() with a timeout needs IORING_ENTER_EXT_ARG.
  if ((params.features & IORING_FEAT_EXT_ARG) == 0) return -EOPNOTSUPP;

  // Arm the wake poll now. A kernel without multishot poll fails it at submission, with a CQE.
  prep_wake_poll();
  r = io_uring_submit(&ring_);
  if (r < 0) return r;
  io_uring_cqe* cqe = nullptr;
  if (io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe != nullptr && cqe->res < 0) {
    return cqe->res == -EINVAL ? -EOPNOTSUPP : cqe->res;
  }
  return 0;
}

IoUringPoller::FdState& IoUringPoller::state(int fd) {
  MNV_ASSERT(fd >= 0 && static_cast<std::size_t>(fd) < max_fds_);
  return fds_[fd];
}

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
  std::uint32_t mask = kInputMask | (events & POLLOUT);
  if (!s.live && !s.add_pending) {
    if (events == 0) return;
    s.add_pending = true;
    s.mask = mask;
    mark_dirty(fd, s);
    return;
  }
  if (mask == s.mask) return;
  s.mask = mask;
  if (s.live) {  // (a pending add just picks up the new mask)
    s.update_pending = true;
    mark_dirty(fd, s);
  }
}

void IoUringPoller::forget(int fd) {
  FdState& s = state(fd);
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
  io_uring_sqe_set_data64(sqe, user_data(kTagWake, 0, 0));
  return sqe;
}

// Turns recorded changes into SQEs. When the SQ fills up, submits what it has (without waiting)
// and goes on; an fd leaves the dirty list only once all its SQEs are prepared.
int IoUringPoller::flush_changes() {
  for (;;) {
    unsigned needed = wake_add_pending_ ? 1 : (dirty_count_ > 0 ? 2 : 0);
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
      io_uring_prep_poll_remove(sqe, user_data(kTagFd, s.stale_gen, fd));
      io_uring_sqe_set_data64(sqe, user_data(kTagIgnore, 0, 0));
      s.remove_pending = false;
    }
    if (s.update_pending && s.live) {
      // Fails with ENOENT if the poll ended meanwhile; its last CQE then re-arms with `mask`.
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      std::uint64_t data = user_data(kTagFd, s.gen, fd);
      io_uring_prep_poll_update(sqe, data, data, s.mask, IORING_POLL_UPDATE_EVENTS | IORING_POLL_ADD_MULTI);
      io_uring_sqe_set_data64(sqe, user_data(kTagIgnore, 0, 0));
    }
    s.update_pending = false;
    if (s.add_pending) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_poll_multishot(sqe, fd, s.mask);
      io_uring_sqe_set_data64(sqe, user_data(kTagFd, s.gen, fd));
      s.add_pending = false;
      s.live = true;
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

void IoUringPoller::drain_wake() {
  std::uint64_t count;
  ssize_t r = ::read(wake_fd_, &count, sizeof(count));
  MNV_ASSERT(r == sizeof(count) || (r < 0 && errno == EAGAIN));
}

// Handles one CQE. False, with nothing changed, when it would need a slot and out is full.
bool IoUringPoller::handle(const io_uring_cqe* cqe, PollEvent* out, int max, int* n, bool* woke) {
  std::uint64_t data = io_uring_cqe_get_data64(cqe);
  bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  switch (tag_of(data)) {
    case kTagIgnore:
      return true;
    case kTagWake:
      *woke = true;
      if (!more) wake_add_pending_ = true;
      return true;
    case kTagFd:
      break;
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
  if (events != 0) {
    if (s.out_seq == wait_seq_) {
      out[s.out_slot].events |= events;  // one entry per fd and wait()
    } else {
      if (*n == max) return false;
      s.out_seq = wait_seq_;
      s.out_slot = *n;
      out[(*n)++] = PollEvent{fd, events};
    }
  }
  if (!more) {  // the multishot poll ended
    s.live = false;
    s.update_pending = false;
    if (s.interest != 0) {
      s.add_pending = true;
      mark_dirty(fd, s);
      ++rearms_;
    }
  }
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
  if (*woke) drain_wake();
  return n;
}

int IoUringPoller::wait(std::int64_t timeout_ns, PollEvent* out, int max) {
  MNV_ASSERT(max > 0 && timeout_ns >= -1);
  ++wait_seq_;
  std::int64_t deadline = 0;
  if (timeout_ns > 0) {  // saturating: callers pass "far away" as a huge timeout
    std::int64_t start = now_ns();
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
      left = deadline - now_ns();
      if (left <= 0) return 0;
    }
  }
}

void IoUringPoller::wake() {
  // Async-signal-safe (the kernel wakes pollers from its SIGTERM handler): one write(2), and
  // errno is left as the interrupted code had it.
  int saved_errno = errno;
  std::uint64_t one = 1;
  ssize_t r = ::write(wake_fd_, &one, sizeof(one));
  // EAGAIN: the counter is saturated, so a wake is pending anyway.
  MNV_ASSERT(r == sizeof(one) || (r < 0 && errno == EAGAIN));
  errno = saved_errno;
}

}  // namespace mnv
