// runtime/poller_uring.h — the io_uring poller: one multishot poll per fd, one io_uring_enter per
// wait().
//
// The code is split by concern: poller_uring_setup.cc (the ring, required and detected
// features), poller_uring.cc (the loop turn, the fd lifecycle, readiness polls),
// poller_uring_transfer.cc (completion-mode receives and sends), poller_uring_multishot.cc
// (provided buffers, multishot receives), poller_uring_cqe.h (what each CQE is for).
//
// Why io_uring: a registered fd costs nothing per loop turn (the multishot poll stays armed in the
// kernel), and registrations, removals and the wait itself go down in a single system call.
//
// How it keeps the Poller contract (runtime/poller.h):
//  * interest() and forget() only record changes; wait() turns them into SQEs and submits them
//    with the wait. Between forget(fd) and that wait() the kernel's poll still holds the old file,
//    so a closed socket is only released (FIN sent) at the next wait().
//  * Every CQE carries the fd and a per-fd generation; forget() bumps the generation, so CQEs of
//    an old registration (already in the CQ, or the -ECANCELED one of its removal) are dropped
//    even when the fd number is reused and registered again at once.
//  * A multishot poll that ends (CQE without IORING_CQE_F_MORE, e.g. after a CQ overflow) is armed
//    again at the next wait() while someone is interested in the fd.
//  * wake() writes an eventfd that has its own multishot poll; wait() drains it.
//  * The poll watches POLLIN | POLLRDHUP from the first interest until forget(), and POLLOUT only
//    while the interest includes it (a new mask replaces the poll: removed, and a new one added):
//    a writable socket watched for POLLOUT would post a CQE at every ACK.
//
// Completion mode (runtime/completion_io.h), offered when the kernel has synchronous cancellation
// (IORING_REGISTER_SYNC_CANCEL, 6.0+): a socket's receive (IORING_OP_RECV into its ring's free
// space, POLL_FIRST when it was just found empty) and send (IORING_OP_SEND with MSG_WAITALL, one
// SQE per contiguous piece) are prepared as SQEs at once and submitted with the next wait().
// Their CQEs carry the fd, the direction and a sequence number; the fd's state points at the
// socket's Transfers, where the result is written, and a CQE whose sequence number is not the
// transfer's (cancelled, forgotten, or an fd number since reused) is dropped. An fd that has
// used completion mode since its last forget() is watched exactly: its poll watches only the
// interest that no busy transfer stands in for, and is removed when nothing is left to watch (a
// receive in flight is the watch on input; keeping the multishot poll too would post a second
// CQE per message). Cancelling a transfer in flight submits whatever is prepared, then waits in
// IORING_REGISTER_SYNC_CANCEL, so the buffer is free on return.
//
// Multishot receive (completion_io.h), offered when the kernel takes a provided-buffer ring
// (5.19; multishot receive itself is 6.0, like synchronous cancellation): the poller owns a ring
// of rx_buffers buffers of rx_buffer_size bytes (touched once at setup, so they are a fixed cost
// per shard, not per connection). A multishot IORING_OP_RECV with IOSQE_BUFFER_SELECT stays armed
// per fd; each CQE's buffer is queued on its fd (FdState, in the poller's table) until the
// socket copies it out with take_recv(), and then goes straight back to the ring (added at once,
// published with the next wait()). Its CQEs carry a per-fd multishot generation, bumped by every
// arm and by forget(), so a buffer in a CQE of a forgotten receive is just given back. It ends:
//  * at the end of input or on an error: queued behind the data, handed out by take_recv();
//  * with ENOBUFS (the ring ran dry): the fd waits in a list, armed again at a wait() once
//    buffers have come back;
//  * when an fd has kMaxQueued buffers queued (its process does not read): an async cancel
//    stops it; data that still arrives before the final CQE is queued, not lost. arm_recv()
//    arms a new one once that final CQE is in;
//  * on its own (no IORING_CQE_F_MORE): armed again at the next wait().
// forget() submits an async cancel for a live one (the buffers are the poller's, so nothing need
// wait for it) and gives the fd's queued buffers back.
//
// Transfers and multishot receives name their socket through the ring's registered file table
// (IOSQE_FIXED_FILE, slot = fd number), which spares the kernel a file lookup and reference per
// SQE: an fd is registered (one system call) at its first transfer or receive, and unregistered
// (one system call) by forget(), before it is closed.
//
// The ring is set up with SINGLE_ISSUER | DEFER_TASKRUN when the kernel accepts them (6.1+), so
// the thread that creates the poller must be the only one to call interest/forget/wait; wake() is
// the one call that any thread may make.
//
// Closing a ring makes the kernel's exit work queue task work, with a signal-like notification,
// to every thread that submitted to it: that thread's next non-restartable blocking call
// (epoll_wait) may fail once with EINTR after the poller is destroyed. The Poller contract
// already returns EINTR to the caller, which retries.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/poller.h"

namespace mnv {

struct IoUringOptions {
  unsigned sq_entries = 0;    // 0: derived from max_fds
  unsigned cq_entries = 0;    // 0: derived from max_fds; at least sq_entries
  bool defer_taskrun = true;  // try SINGLE_ISSUER | DEFER_TASKRUN first
  unsigned rx_buffers = 512;        // multishot receive: provided buffers (a power of two)
  unsigned rx_buffer_size = 2048;   // bytes each
};

class IoUringPoller final : public Poller, public CompletionIo {
 public:
  // Null with errno set when io_uring cannot be used: the setup call's own error (EPERM when
  // kernel.io_uring_disabled or seccomp forbid it, ENOSYS on old kernels), or EOPNOTSUPP when
  // the kernel lacks IORING_FEAT_EXT_ARG (5.11) or multishot poll (5.13).
  // `wake_fd`: as Poller::create's.
  static std::unique_ptr<IoUringPoller> create(std::size_t max_fds,
                                               const IoUringOptions& options = IoUringOptions(),
                                               int wake_fd = -1);
  ~IoUringPoller() override;
  IoUringPoller(const IoUringPoller&) = delete;
  IoUringPoller& operator=(const IoUringPoller&) = delete;

  PollerKind kind() const override { return PollerKind::kIoUring; }
  void interest(int fd, std::uint32_t events) override;
  void forget(int fd) override;
  int wait(std::int64_t timeout_ns, PollEvent* out, int max) override;
  void wake() override;
  CompletionIo* completion_io() override { return completion_ ? this : nullptr; }

  // CompletionIo (runtime/completion_io.h).
  void recv(int fd, Transfers* x, void* buf, std::uint32_t len, bool poll_first) override;
  void send(int fd, Transfers* x, const iovec* iov, int n) override;
  void send_vector(int fd, Transfers* x, SendVector* v) override;
  void cancel(int fd, Transfers* x, bool send) override;
  void detach(int fd, Transfers* x) override;
  bool recv_multishot() const override { return multishot_ && multishot_on_; }
  void enable_recv_multishot(bool on) override { multishot_on_ = on; }
  bool recv_queued(int fd) override {
    const FdState& s = state(fd);
    return s.rx_first != 0 || s.rx_ended;
  }
  void arm_recv(int fd) override;
  std::int32_t take_recv(int fd, const iovec* iov, int n) override;
  std::uint32_t lend_recv(int fd, const char** data, std::uint32_t* len) override;
  void give_back(int fd, std::uint32_t token) override;

  // Multishot receive: whether the kernel has it (provided-buffer rings), buffers the kernel
  // can fill now, and receives armed again after ENOBUFS (diagnostics and tests).
  bool multishot_available() const { return multishot_; }
  unsigned rx_buffers_free() const { return rx_count_ - rx_held_; }
  std::uint64_t nobufs_rearms() const { return nobufs_rearms_; }
  // Whether fd is in the ring's registered file table (diagnostics and tests).
  bool registered(int fd) { return state(fd).fixed; }
  bool fixed_files() const { return fixed_files_; }
  // Whether a multishot receive is armed (submitted or about to be) on fd.
  bool recv_armed(int fd) { return state(fd).ms_state == kMsLive || state(fd).ms_arm_pending; }

  // Whether the kernel took SINGLE_ISSUER | DEFER_TASKRUN.
  bool defer_taskrun() const { return defer_taskrun_; }
  // Multishot polls armed again after they ended on their own (diagnostics and tests).
  std::uint64_t rearms() const { return rearms_; }
  // Whether an fd has a readiness poll submitted (diagnostics and tests).
  bool polling(int fd) { return state(fd).live; }

 private:
  // All-zero is the empty state (the table comes from calloc: untouched entries cost nothing).
  struct FdState {
    std::uint64_t out_seq = 0;
    Transfers* xfer = nullptr;    // the socket's transfers on this fd (completion mode), or null
    std::uint32_t gen = 0;        // generation of the current registration
    std::uint32_t stale_gen = 0;  // registration to remove, when remove_pending
    std::uint32_t interest = 0;   // last events passed to interest()
    std::int32_t out_slot = 0;    // index in wait()'s out, valid when out_seq == wait_seq_
    std::uint32_t mask = 0;       // events the live (or pending) poll watches
    std::uint32_t seq = 0;        // the last transfer sequence number handed out on this fd
    // Multishot receive.
    std::uint32_t ms_gen = 0;     // generation of the current multishot receive
    std::uint32_t ms_stale = 0;   // the one to cancel, when ms_cancel_pending
    std::uint16_t rx_count = 0;   // buffers queued
    std::uint16_t rx_first = 0;   // queued buffers, oldest first: buffer id + 1 (0: none)
    std::uint16_t rx_last = 0;
    std::int16_t rx_end = 0;      // 0 (end of input) or -errno
    std::uint16_t rx_lent = 0;    // the buffer lent out (lend_recv()): its id + 1 (0: none)
    std::uint8_t ms_state = 0;    // kMsIdle, kMsLive (submitted), kMsCancelling (until its last CQE)
    bool live : 1 = false;            // a multishot poll for gen is submitted and has not ended
    bool add_pending : 1 = false;     // a multishot poll for gen waits to be submitted
    bool remove_pending : 1 = false;  // a poll remove for stale_gen waits to be submitted
    bool dirty : 1 = false;           // fd is in dirty_
    bool update_pending : 1 = false;  // the live poll must be replaced by one watching `mask`
    bool exact : 1 = false;           // completion mode was used: the poll watches exactly what no
                                      // transfer stands in for (see exact_mask())
    bool ms_arm_pending : 1 = false;  // a multishot receive waits to be submitted
    bool ms_cancel_pending : 1 = false;  // an async cancel of ms_stale waits to be submitted
    bool ms_rearm : 1 = false;        // arm again when the cancelled one has ended
    bool ms_starved : 1 = false;      // ended with ENOBUFS: in starved_, armed once buffers are back
    bool rx_ended : 1 = false;        // rx_end is queued behind the data
    bool fixed : 1 = false;           // fd is in the ring's registered file table (slot fd)
  };
  static_assert(sizeof(FdState) <= 64, "one cache line per fd");
  enum : std::uint8_t { kMsIdle = 0, kMsLive = 1, kMsCancelling = 2 };
  // A provided buffer's bookkeeping while it is queued on an fd.
  struct RxBuf {
    std::uint32_t len = 0;   // bytes received
    std::uint32_t off = 0;   // bytes already taken
    std::uint32_t next = 0;  // next queued buffer id + 1 (0: none)
  };
  struct FreeDeleter {
    void operator()(void* p) const;
  };

  IoUringPoller(std::size_t max_fds, int wake_fd);
  int setup(unsigned sq_entries, unsigned cq_entries, bool try_defer_taskrun, unsigned rx_buffers,
            unsigned rx_buffer_size);
  FdState& state(int fd);
  void mark_dirty(int fd, FdState& s);
  io_uring_sqe* prep_wake_poll();
  int flush_changes();
  io_uring_sqe* next_sqe();
  void prep_send(int fd, FdState& s, Transfer& t);
  void prep_sendmsg(int fd, FdState& s, Transfer& t);
  int enter(std::int64_t timeout_ns);
  int reap(PollEvent* out, int max, bool* woke);
  bool handle(const io_uring_cqe* cqe, PollEvent* out, int max, int* n, bool* woke);
  bool handle_transfer(std::uint64_t data, const io_uring_cqe* cqe, PollEvent* out, int max, int* n);
  bool report(int fd, FdState& s, std::uint32_t events, PollEvent* out, int max, int* n);
  // Completion mode: the poll mask an exact fd needs now (0: none), and bringing its poll there.
  static std::uint32_t exact_mask(const FdState& s);
  void refresh(int fd, FdState& s);
  void arm(int fd, FdState& s, std::uint32_t mask);
  void start_transfer(int fd, FdState& s, Transfers* x, Transfer& t);
  int cancel_in_flight(std::uint64_t data);
  bool setup_rx_buffers(unsigned count, unsigned size);
  bool handle_multishot(std::uint64_t data, const io_uring_cqe* cqe, PollEvent* out, int max, int* n);
  void recycle(std::uint32_t bid);
  void ms_arm(int fd, FdState& s);
  void use_fixed(io_uring_sqe* sqe, int fd, FdState& s);
  static bool ms_covers_input(const FdState& s);

  io_uring ring_{};
  bool ring_ready_ = false;
  bool defer_taskrun_ = false;
  int wake_fd_;
  bool wake_add_pending_ = false;
  std::size_t max_fds_;
  bool completion_ = false;  // completion mode works on this kernel
  std::unique_ptr<FdState[], FreeDeleter> fds_;  // max_fds_ entries
  std::unique_ptr<int[]> dirty_;    // fds with changes to submit, each at most once
  std::size_t dirty_count_ = 0;
  std::uint64_t wait_seq_ = 0;
  std::uint64_t rearms_ = 0;
  unsigned sq_counted_ = 0;  // the SQ's submitted position when counts_ was last brought up to date
  // Multishot receive: the provided-buffer ring (group kBufGroup) and its buffers.
  bool multishot_ = false;     // the kernel took the buffer ring
  bool multishot_on_ = true;
  io_uring_buf_ring* rx_ring_ = nullptr;
  std::size_t rx_ring_bytes_ = 0;
  char* rx_bufs_ = nullptr;
  std::size_t rx_bufs_bytes_ = 0;
  std::unique_ptr<RxBuf[]> rx_meta_;
  unsigned rx_count_ = 0;
  unsigned rx_size_ = 0;
  unsigned rx_held_ = 0;       // buffers out of the ring (in CQEs reaped, queued on fds)
  unsigned rx_adds_ = 0;       // buffers given back but not yet published to the kernel
  std::unique_ptr<int[]> starved_;  // fds whose receive ended with ENOBUFS
  std::size_t starved_count_ = 0;
  std::uint64_t nobufs_rearms_ = 0;
  bool fixed_files_ = false;  // a sparse registered file table of max_fds_ slots
};

}  // namespace mnv
