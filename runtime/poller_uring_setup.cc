// runtime/poller_uring_setup.cc — the io_uring poller's setup: the ring (SINGLE_ISSUER |
// DEFER_TASKRUN where the kernel takes them, else plain flags), the features it must have
// (EXT_ARG, multishot poll: without them create() fails and Poller::create falls back to epoll),
// and the optional ones it detects (synchronous cancellation for completion mode, a registered
// ring fd, the registered file table). The provided buffers are set up in
// poller_uring_multishot.cc.

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>

#include "mem/log.h"
#include "runtime/poller_uring.h"
#include "runtime/poller_uring_cqe.h"
#include "runtime/wake_fd.h"

namespace mnv {

using namespace uring;

namespace {

// The smallest power of two >= n, within [lo, hi].
unsigned pow2_within(std::size_t n, unsigned lo, unsigned hi) {
  unsigned v = lo;
  while (v < n && v < hi) v <<= 1;
  return v;
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
  reg.addr = user_data(kIgnore, 0, 0);
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

IoUringPoller::FdState& IoUringPoller::state(int fd) {
  MNV_ASSERT(fd >= 0 && static_cast<std::size_t>(fd) < max_fds_);
  return fds_[fd];
}

}  // namespace mnv
