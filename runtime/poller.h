// runtime/poller.h — the virtual kernel's readiness poller, behind one interface.
//
// Three backends, chosen at run time: io_uring (default; multishot poll, one io_uring_enter per
// loop turn, SINGLE_ISSUER|DEFER_TASKRUN when the kernel accepts them), epoll and poll. When
// io_uring cannot be set up (kernel.io_uring_disabled, seccomp, an old kernel) create() falls
// back to epoll and logs one line saying so.
//
// Contract with the kernel (runtime/kernel.h):
//  * The kernel calls interest(fd, events) whenever the set of events some thread is blocked on
//    for `fd` changes (0 = nobody waits). Threads only block after an operation returned EAGAIN,
//    so edge-triggered backends (epoll with EPOLLET, io_uring multishot poll) may register the
//    fd once for POLLIN|POLLOUT|POLLRDHUP and ignore later changes; the level-triggered backend
//    (poll) must watch exactly `events`, and nothing while they are 0.
//  * forget(fd) is called before the fd is closed; afterwards no event for that fd's old file is
//    ever reported (the fd number may be reused at once by a new file).
//  * wait() submits pending changes, then blocks until an event arrives or the timeout passes,
//    and reports events as POLL* bits (POLLIN, POLLOUT, POLLRDHUP, POLLERR, POLLHUP). Spurious
//    or repeated events are allowed: the kernel's ops retry and block again.
//  * wake() may be called from any OS thread and makes a concurrent or the next wait() return
//    (used to wake a sleeping shard).
//  * completion_io(): a backend that can perform socket receives and sends itself (io_uring)
//    offers them there (runtime/completion_io.h); wait() reports each completion once, as
//    kTransferDone on the fd (not as a POLL* readiness bit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/completion_io.h"
#include "runtime/wake_fd.h"

namespace mnv {

enum class PollerKind { kIoUring, kEpoll, kPoll };

// "io_uring", "epoll", "poll".
const char* poller_name(PollerKind kind);
// Parses a name as above; false if unknown.
bool parse_poller(const char* name, PollerKind* out);

struct PollEvent {
  int fd;
  std::uint32_t events;  // POLL* bits, and kTransferDone (completion_io.h)
};

class Poller {
 public:
  // A poller for fds below `max_fds`. For kIoUring, falls back to epoll (one log line) when
  // io_uring is unavailable. Null (errno set) if even that fails. wake() writes an eventfd of
  // the poller's own, or a duplicate of `wake_fd` when that is >= 0: an eventfd made before
  // shards were forked as processes, through which another process wakes this poller
  // (shard/shard.h).
  static std::unique_ptr<Poller> create(PollerKind kind, std::size_t max_fds, int wake_fd = -1);

  virtual ~Poller() = default;
  virtual PollerKind kind() const = 0;
  virtual void interest(int fd, std::uint32_t events) = 0;
  virtual void forget(int fd) = 0;
  // timeout_ns: -1 waits without limit, 0 only collects what is ready. Returns the number of
  // events written to out (at most max), or -errno (EINTR is returned, not retried).
  virtual int wait(std::int64_t timeout_ns, PollEvent* out, int max) = 0;
  virtual void wake() = 0;
  // Completion-mode socket I/O, or null when this backend has none (epoll, poll, an io_uring
  // too old for it).
  virtual CompletionIo* completion_io() { return nullptr; }

  // What this poller handed the OS and took back so far (for the metrics): submitted requests
  // (io_uring SQEs; epoll_ctl calls; fds passed to poll), completions (CQEs; ready events), and
  // the bytes its completion-mode transfers received and sent (runtime/completion_io.h; sockets
  // count their own readv/writev).
  struct Counts {
    std::uint64_t submitted = 0;
    std::uint64_t completed = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
  };
  const Counts& counts() const { return counts_; }

 protected:
  Counts counts_;
};

}  // namespace mnv
