// runtime/poller_uring.cc — the io_uring poller (see poller_uring.h for the design).
#include "runtime/poller_uring.h"

#include <poll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <sys/socket.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "mem/critical_section.h"
#include "mem/log.h"
#include "runtime/wake_fd.h"

namespace mnv {
namespace {

// user_data of every SQE: | tag: 2 bits | generation: 30 bits | fd: 32 bits |. The generation
// wraps after 2^30 forget() calls on one fd, far more than can happen while one old CQE waits.
// A completion-mode transfer (kTagIo) puts its direction in the generation's top bit and its
// sequence number (per fd, wrapping after 2^28 transfers) in the low 28; a multishot receive
// sets the next bit (kMulti) and puts its per-fd multishot generation in the low 28.
enum Tag : std::uint64_t { kTagFd = 0, kTagWake = 1, kTagIgnore = 2, kTagIo = 3 };
constexpr std::uint32_t kGenMask = (1u << 30) - 1;
constexpr std::uint32_t kSend = 1u << 29;   // kTagIo: the send (else the receive)
constexpr std::uint32_t kMulti = 1u << 28;  // kTagIo: a multishot receive
constexpr std::uint32_t kSeqMask = kMulti - 1;

std::uint64_t user_data(Tag tag, std::uint32_t gen, int fd) {
  return (static_cast<std::uint64_t>(tag) << 62) | (static_cast<std::uint64_t>(gen & kGenMask) << 32) |
         static_cast<std::uint32_t>(fd);
}
Tag tag_of(std::uint64_t data) { return static_cast<Tag>(data >> 62); }
std::uint32_t gen_of(std::uint64_t data) { return static_cast<std::uint32_t>(data >> 32) & kGenMask; }
int fd_of(std::uint64_t data) { return static_cast<int>(static_cast<std::uint32_t>(data)); }
std::uint64_t io_data(bool send, std::uint32_t seq, int fd) {
  return user_data(kTagIo, (send ? kSend : 0) | (seq & kSeqMask), fd);
}
std::uint64_t ms_data(std::uint32_t ms_gen, int fd) { return user_data(kTagIo, kMulti | (ms_gen & kSeqMask), fd); }

// Multishot receive: the provided-buffer group, and how many buffers one fd may hold queued
// before its receive is stopped (its process is not reading).
constexpr unsigned short kBufGroup = 0;
constexpr unsigned kMaxQueued = 4;

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

std::unique_ptr<IoUringPoller> IoUringPoller::create(std::size_t max_fds, const IoUringOptions& options,
                                                     int shared_wake_fd) {
  MNV_ASSERT(max_fds > 0 && max_fds <= static_cast<std::size_t>(INT_MAX));
  // Up to two SQEs per fd may wait for a submit (remove + add); a full SQ is submitted early.
  unsigned sq = options.sq_entries != 0 ? options.sq_entries : pow2_within(max_fds + 1, 16, 4096);
  // One CQE per fd and loop turn is the common case; an overflow only ends a multishot poll,
  // which is then armed again.
  unsigned cq = options.cq_entries != 0 ? options.cq_entries : pow2_within(2 * max_fds + 2, 2 * sq, 65536);
  MNV_ASSERT(cq >= sq);

  int wake_fd = open_wake_fd(shared_wake_fd);
  if (wake_fd < 0) return nullptr;
  std::unique_ptr<IoUringPoller> poller(new IoUringPoller(max_fds, wake_fd));
  int r = poller->setup(sq, cq, options.defer_taskrun, options.rx_buffers, options.rx_buffer_size);
  if (r < 0) {
    poller.reset();
    errno = -r;
    return nullptr;
  }
  return poller;
}

void IoUringPoller::FreeDeleter::operator()(void* p) const { std::free(p); }

IoUringPoller::IoUringPoller(std::size_t max_fds, int wake_fd)
    : wake_fd_(wake_fd),
      max_fds_(max_fds),
      fds_(static_cast<FdState*>(std::calloc(max_fds, sizeof(FdState)))),
      dirty_(new int[max_fds]) {
  if (fds_ == nullptr) panic("mnv: io_uring poller: no memory for %zu fds", max_fds);
}

IoUringPoller::~IoUringPoller() {
  if (ring_ready_) io_uring_queue_exit(&ring_);  // (also drops the buffer ring's registration)
  if (rx_ring_ != nullptr) ::munmap(rx_ring_, rx_ring_bytes_);
  if (rx_bufs_ != nullptr) ::munmap(rx_bufs_, rx_bufs_bytes_);
  ::close(wake_fd_);
}

int IoUringPoller::setup(unsigned sq_entries, unsigned cq_entries, bool try_defer_taskrun, unsigned rx_buffers,
                         unsigned rx_buffer_size) {
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
  // Completion mode needs synchronous cancellation (6.0; RECVSEND_POLL_FIRST and
  // CQE_F_SOCK_NONEMPTY are older): cancelling a request that does not exist says ENOENT there.
  io_uring_sync_cancel_reg reg{};
  reg.addr = user_data(kTagIgnore, 0, 0);
  reg.timeout.tv_sec = -1;
  reg.timeout.tv_nsec = -1;
  completion_ = io_uring_register_sync_cancel(&ring_, &reg) == -ENOENT;
  // One enter per loop turn: a registered ring fd spares the kernel an fd lookup in each. (It is
  // registered for this thread only: with SINGLE_ISSUER no other thread may submit anyway.)
  if (defer_taskrun_) io_uring_register_ring_fd(&ring_);
  if (completion_) {
    multishot_ = setup_rx_buffers(rx_buffers, rx_buffer_size);
    fixed_files_ = io_uring_register_files_sparse(&ring_, static_cast<unsigned>(max_fds_)) == 0;
  }
  return 0;
}

// The multishot receive's provided buffers: a ring registered as group kBufGroup, filled with
// every buffer. Both are mapped (and touched) now, so they cost the same whatever the load.
bool IoUringPoller::setup_rx_buffers(unsigned count, unsigned size) {
  // (Buffer ids + 1 fit FdState's 16-bit fields.)
  if (count == 0 || (count & (count - 1)) != 0 || count > 32768 || size == 0) return false;
  rx_ring_bytes_ = count * sizeof(io_uring_buf);
  void* ring = ::mmap(nullptr, rx_ring_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (ring == MAP_FAILED) return false;
  rx_ring_ = static_cast<io_uring_buf_ring*>(ring);
  rx_bufs_bytes_ = static_cast<std::size_t>(count) * size;
  void* bufs = ::mmap(nullptr, rx_bufs_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (bufs == MAP_FAILED) return false;  // (the destructor unmaps the ring)
  rx_bufs_ = static_cast<char*>(bufs);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uint64_t>(rx_ring_);
  reg.ring_entries = count;
  reg.bgid = kBufGroup;
  if (io_uring_register_buf_ring(&ring_, &reg, 0) != 0) return false;  // before 5.19
  io_uring_buf_ring_init(rx_ring_);
  int mask = io_uring_buf_ring_mask(count);
  for (unsigned bid = 0; bid < count; ++bid) {
    io_uring_buf_ring_add(rx_ring_, rx_bufs_ + static_cast<std::size_t>(bid) * size, size,
                          static_cast<unsigned short>(bid), mask, static_cast<int>(bid));
  }
  io_uring_buf_ring_advance(rx_ring_, static_cast<int>(count));
  rx_meta_.reset(new RxBuf[count]);
  starved_.reset(new int[max_fds_]);
  rx_count_ = count;
  rx_size_ = size;
  return true;
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
  io_uring_sqe_set_data64(sqe, user_data(kTagWake, 0, 0));
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
    if (s.ms_cancel_pending) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_cancel64(sqe, ms_data(s.ms_stale, fd), 0);
      io_uring_sqe_set_data64(sqe, user_data(kTagIgnore, 0, 0));
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
  switch (tag_of(data)) {
    case kTagIgnore:
      return true;
    case kTagWake:
      *woke = true;
      if (!more) wake_add_pending_ = true;
      return true;
    case kTagFd:
      break;
    case kTagIo:
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

// A transfer's CQE. Like handle(): false, with nothing changed, when out is full.
bool IoUringPoller::handle_transfer(std::uint64_t data, const io_uring_cqe* cqe, PollEvent* out, int max, int* n) {
  if ((gen_of(data) & kMulti) != 0) return handle_multishot(data, cqe, out, max, n);
  int fd = fd_of(data);
  bool is_send = (gen_of(data) & kSend) != 0;
  FdState& s = state(fd);
  if (s.xfer == nullptr) return true;  // forgotten or detached
  Transfer& t = is_send ? s.xfer->tx : s.xfer->rx;
  if (t.phase != Transfer::Phase::kInFlight || t.seq != (gen_of(data) & kSeqMask)) return true;  // dropped
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
    t.res = res;
    t.more = (cqe->flags & IORING_CQE_F_SOCK_NONEMPTY) != 0;
    t.phase = Transfer::Phase::kDone;
    return true;
  }
  if (res > 0 || res == -EAGAIN || res == -EINTR) {
    std::uint32_t sent = res > 0 ? static_cast<std::uint32_t>(res) : 0;
    std::uint32_t left = static_cast<std::uint32_t>(t.iov[t.index].iov_len) - t.offset;
    MNV_ASSERT(sent <= left);
    if (sent < left || t.index + 1 < t.count) {  // a short send, or the next piece: go on
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
  t.res = res;
  t.phase = Transfer::Phase::kDone;
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
  if (*woke) drain_wake_fd(wake_fd_);
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
  signal_wake_fd(wake_fd_);  // (async-signal-safe: the kernel wakes pollers from its SIGTERM handler)
}

// ---- completion mode ----------------------------------------------------------------------

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
inline io_uring_sqe* IoUringPoller::next_sqe() {
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
inline void IoUringPoller::use_fixed(io_uring_sqe* sqe, int fd, FdState& s) {
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
inline void IoUringPoller::start_transfer(int fd, FdState& s, Transfers* x, Transfer& t) {
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
  t.iov[0] = iov[0];
  if (n == 2) t.iov[1] = iov[1];
  t.count = static_cast<std::uint8_t>(n);
  t.index = 0;
  t.offset = 0;
  t.total = 0;
  prep_send(fd, s, t);
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
  if (s.xfer == x) s.xfer = nullptr;
}

}  // namespace mnv

namespace mnv {

// ---- multishot receive ----------------------------------------------------------------------

// Whether a multishot receive is, or is about to be, the fd's watch on input.
bool IoUringPoller::ms_covers_input(const FdState& s) {
  return s.ms_state == kMsLive || s.ms_arm_pending || s.ms_starved || (s.ms_state == kMsCancelling && s.ms_rearm);
}

// Queues a new multishot receive on fd for the next flush (state idle).
void IoUringPoller::ms_arm(int fd, FdState& s) {
  s.ms_gen = (s.ms_gen + 1) & kSeqMask;
  s.ms_arm_pending = true;
  s.exact = true;
  mark_dirty(fd, s);
  if (s.live || s.add_pending) refresh(fd, s);  // the receive stands in for the poll on input
}

void IoUringPoller::arm_recv(int fd) {
  CriticalSection cs;
  FdState& s = state(fd);
  if (s.ms_state == kMsLive || s.ms_arm_pending || s.ms_starved || s.rx_ended) return;
  if (s.ms_state == kMsCancelling) {  // stopped for backpressure: again once it has ended
    s.ms_rearm = true;
    return;
  }
  ms_arm(fd, s);
}

// A buffer goes back to the kernel's ring (published at the next flush).
inline void IoUringPoller::recycle(std::uint32_t bid) {
  io_uring_buf_ring_add(rx_ring_, rx_bufs_ + static_cast<std::size_t>(bid) * rx_size_, rx_size_,
                        static_cast<unsigned short>(bid), io_uring_buf_ring_mask(rx_count_), static_cast<int>(rx_adds_));
  ++rx_adds_;
  --rx_held_;
}

std::int32_t IoUringPoller::take_recv(int fd, const iovec* iov, int n) {
  CriticalSection cs;
  FdState& s = state(fd);
  if (s.rx_first == 0) {
    if (!s.rx_ended) return -EAGAIN;
    return s.rx_end;
  }
  std::uint32_t copied = 0;
  int i = 0;
  std::size_t at = 0;  // bytes of iov[i] filled
  while (s.rx_first != 0 && i < n) {
    std::uint32_t bid = s.rx_first - 1;
    RxBuf& b = rx_meta_[bid];
    std::size_t room = iov[i].iov_len - at;
    std::size_t len = b.len - b.off;
    std::size_t m = len < room ? len : room;
    std::memcpy(static_cast<char*>(iov[i].iov_base) + at, rx_bufs_ + static_cast<std::size_t>(bid) * rx_size_ + b.off, m);
    copied += static_cast<std::uint32_t>(m);
    at += m;
    b.off += static_cast<std::uint32_t>(m);
    if (b.off == b.len) {  // all copied: back to the ring
      s.rx_first = static_cast<std::uint16_t>(b.next);
      if (s.rx_first == 0) s.rx_last = 0;
      --s.rx_count;
      recycle(bid);
    }
    if (at == iov[i].iov_len) {
      ++i;
      at = 0;
    }
  }
  return static_cast<std::int32_t>(copied);
}

std::uint32_t IoUringPoller::lend_recv(int fd, const char** data, std::uint32_t* len) {
  CriticalSection cs;
  FdState& s = state(fd);
  if (s.rx_first == 0) return 0;
  MNV_ASSERT(s.rx_lent == 0);
  std::uint32_t bid = s.rx_first - 1u;
  RxBuf& b = rx_meta_[bid];
  s.rx_first = static_cast<std::uint16_t>(b.next);
  if (s.rx_first == 0) s.rx_last = 0;
  --s.rx_count;
  *data = rx_bufs_ + static_cast<std::size_t>(bid) * rx_size_ + b.off;
  *len = b.len - b.off;
  s.rx_lent = static_cast<std::uint16_t>(bid + 1);
  return bid + 1;  // (still held: recycled by give_back() or forget())
}

void IoUringPoller::give_back(int fd, std::uint32_t token) {
  CriticalSection cs;
  FdState& s = state(fd);
  if (token == 0 || s.rx_lent != token) return;  // forgotten since: already back
  s.rx_lent = 0;
  recycle(token - 1);
}

// A multishot receive's CQE. Like handle(): false, with nothing changed, when out is full.
bool IoUringPoller::handle_multishot(std::uint64_t data, const io_uring_cqe* cqe, PollEvent* out, int max, int* n) {
  int fd = fd_of(data);
  FdState& s = state(fd);
  bool has_buf = (cqe->flags & IORING_CQE_F_BUFFER) != 0;
  std::uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
  bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  std::int32_t res = cqe->res;
  if ((gen_of(data) & kSeqMask) != s.ms_gen || s.ms_state == kMsIdle) {  // forgotten since
    if (has_buf) {
      ++rx_held_;
      recycle(bid);
    }
    return true;
  }
  if (res > 0) {
    MNV_ASSERT(has_buf && bid < rx_count_);
    if (!report(fd, s, kTransferDone, out, max, n)) return false;
    ++rx_held_;
    RxBuf& b = rx_meta_[bid];
    b.len = static_cast<std::uint32_t>(res);
    b.off = 0;
    b.next = 0;
    if (s.rx_last != 0) {
      rx_meta_[s.rx_last - 1].next = bid + 1;
    } else {
      s.rx_first = static_cast<std::uint16_t>(bid + 1);
    }
    s.rx_last = static_cast<std::uint16_t>(bid + 1);
    ++s.rx_count;
    // Its process is not reading: stop receiving until it has caught up (the OS socket holds
    // the rest and applies TCP's flow control).
    if (more && s.rx_count >= kMaxQueued && s.ms_state == kMsLive && !s.ms_cancel_pending) {
      s.ms_state = kMsCancelling;
      s.ms_cancel_pending = true;
      s.ms_stale = s.ms_gen;
      mark_dirty(fd, s);
    }
  } else {
    if (has_buf) {  // (not expected without data)
      ++rx_held_;
      recycle(bid);
    }
    if (res != -ENOBUFS && res != -ECANCELED) {  // the end of input, or an error: queued last
      if (!report(fd, s, kTransferDone, out, max, n)) return false;
      s.rx_ended = true;
      s.rx_end = static_cast<std::int16_t>(res);
    }
  }
  if (!more) {  // this receive has ended
    bool rearm = s.ms_state == kMsLive || s.ms_rearm;
    s.ms_state = kMsIdle;
    s.ms_rearm = false;
    if (rearm && !s.rx_ended) {
      if (res == -ENOBUFS) {  // wait for buffers to come back
        s.ms_starved = true;
        if (starved_count_ == max_fds_) {  // entries of fds forgotten since: drop them
          std::size_t kept = 0;
          for (std::size_t i = 0; i < starved_count_; ++i) {
            if (fds_[starved_[i]].ms_starved) starved_[kept++] = starved_[i];
          }
          starved_count_ = kept;
        }
        MNV_ASSERT(starved_count_ < max_fds_);
        starved_[starved_count_++] = fd;
      } else {
        ms_arm(fd, s);
      }
    } else if (s.exact) {
      refresh(fd, s);  // whoever waits for input may need a readiness watch now
    }
  }
  return true;
}

}  // namespace mnv
