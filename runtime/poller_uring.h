// runtime/poller_uring.h — the io_uring poller: one multishot poll per fd, one io_uring_enter per
// wait().
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
//    while the interest includes it (a poll update changes the mask): a writable socket watched
//    for POLLOUT would post a CQE at every ACK.
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
};

class IoUringPoller final : public Poller, public CompletionIo {
 public:
  // Null with errno set when io_uring cannot be used: the setup call's own error (EPERM when
  // kernel.io_uring_disabled or seccomp forbid it, ENOSYS on old kernels), or EOPNOTSUPP when
  // the kernel lacks IORING_FEAT_EXT_ARG (5.11) or multishot poll (5.13).
  static std::unique_ptr<IoUringPoller> create(std::size_t max_fds,
                                               const IoUringOptions& options = IoUringOptions());
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
  void cancel(int fd, Transfers* x, bool send) override;
  void detach(int fd, Transfers* x) override;

  // Whether the kernel took SINGLE_ISSUER | DEFER_TASKRUN.
  bool defer_taskrun() const { return defer_taskrun_; }
  // Multishot polls armed again after they ended on their own (diagnostics and tests).
  std::uint64_t rearms() const { return rearms_; }
  // Whether an fd has a readiness poll submitted (diagnostics and tests).
  bool polling(int fd) { return state(fd).live; }

 private:
  // All-zero is the empty state (the table comes from calloc: untouched entries cost nothing).
  struct FdState {
    std::uint32_t gen = 0;        // generation of the current registration
    std::uint32_t stale_gen = 0;  // registration to remove, when remove_pending
    std::uint32_t interest = 0;   // last events passed to interest()
    std::int32_t out_slot = 0;    // index in wait()'s out, valid when out_seq == wait_seq_
    std::uint64_t out_seq = 0;
    bool live = false;            // a multishot poll for gen is submitted and has not ended
    bool add_pending = false;     // a multishot poll for gen waits to be submitted
    bool remove_pending = false;  // a poll remove for stale_gen waits to be submitted
    bool dirty = false;           // fd is in dirty_
    bool update_pending = false;  // the live poll's mask must change to `mask`
    bool exact = false;           // completion mode was used: the poll watches exactly what no
                                  // transfer stands in for (see exact_mask())
    std::uint32_t mask = 0;       // events the live (or pending) poll watches
    std::uint32_t seq = 0;        // the last transfer sequence number handed out on this fd
    Transfers* xfer = nullptr;    // the socket's transfers on this fd (completion mode), or null
  };
  struct FreeDeleter {
    void operator()(void* p) const;
  };

  IoUringPoller(std::size_t max_fds, int wake_fd);
  int setup(unsigned sq_entries, unsigned cq_entries, bool try_defer_taskrun);
  FdState& state(int fd);
  void mark_dirty(int fd, FdState& s);
  io_uring_sqe* prep_wake_poll();
  int flush_changes();
  io_uring_sqe* next_sqe();
  void prep_send(int fd, FdState& s, Transfer& t);
  int enter(std::int64_t timeout_ns);
  int reap(PollEvent* out, int max, bool* woke);
  bool handle(const io_uring_cqe* cqe, PollEvent* out, int max, int* n, bool* woke);
  bool handle_transfer(std::uint64_t data, const io_uring_cqe* cqe, PollEvent* out, int max, int* n);
  bool report(int fd, FdState& s, std::uint32_t events, PollEvent* out, int max, int* n);
  void drain_wake();
  // Completion mode: the poll mask an exact fd needs now (0: none), and bringing its poll there.
  static std::uint32_t exact_mask(const FdState& s);
  void refresh(int fd, FdState& s);
  void start_transfer(int fd, FdState& s, Transfers* x, Transfer& t);
  int cancel_in_flight(std::uint64_t data);

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
};

}  // namespace mnv
