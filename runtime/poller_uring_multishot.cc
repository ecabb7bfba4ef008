// runtime/poller_uring_multishot.cc — the io_uring poller's multishot receive and its provided buffers
// (runtime/completion_io.h): the buffer ring (a fixed cost per shard), one armed receive per fd
// queueing the buffers it fills, take/lend/give back, backpressure (a receive stopped after
// kMaxQueued unread buffers) and re-arming after ENOBUFS.

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "mem/critical_section.h"
#include "mem/log.h"
#include "runtime/poller_uring.h"
#include "runtime/poller_uring_cqe.h"

namespace mnv {

using namespace uring;

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
void IoUringPoller::recycle(std::uint32_t bid) {
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
    if (res > 0) counts_.bytes_in += static_cast<std::uint64_t>(res);
    if (has_buf) {
      ++rx_held_;
      recycle(bid);
    }
    return true;
  }
  if (res > 0) {
    MNV_ASSERT(has_buf && bid < rx_count_);
    if (!report(fd, s, kTransferDone, out, max, n)) return false;
    counts_.bytes_in += static_cast<std::uint64_t>(res);
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
