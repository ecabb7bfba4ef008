// runtime/poller_epoll.h — the epoll poller: the fallback when io_uring is unavailable.
//
// Each fd is added once, edge-triggered, for EPOLLIN | EPOLLRDHUP on its first nonzero interest()
// (the kernel only blocks after EAGAIN, so edges are enough; it keeps the edges nobody waited for)
// and deleted by forget(), before the caller closes it; epoll_ctl is synchronous, so no event of
// the old file can follow. EPOLLOUT is added (EPOLL_CTL_MOD) only while the interest includes it
// and removed after: a writable socket with EPOLLOUT registered raises an edge at every ACK, which
// measured as a large share of the kernel time in the echo benchmark.
// An fd that epoll refuses (EPERM for a regular file, ENOSPC past max_user_watches) is reported
// once as POLLERR by the next wait(), so whatever waits on it retries and sees its own result.
// wake() writes an eventfd that is in the epoll set too. Timeouts are in nanoseconds with
// epoll_pwait2 (Linux 5.11, glibc 2.35) and rounded up to milliseconds without it.
#pragma once

#include <sys/epoll.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/poller.h"

namespace mnv {

class EpollPoller final : public Poller {
 public:
  // Null with errno set when epoll_create1 or eventfd fail.
  static std::unique_ptr<EpollPoller> create(std::size_t max_fds, int wake_fd = -1);
  ~EpollPoller() override;
  EpollPoller(const EpollPoller&) = delete;
  EpollPoller& operator=(const EpollPoller&) = delete;

  PollerKind kind() const override { return PollerKind::kEpoll; }
  void interest(int fd, std::uint32_t events) override;
  void forget(int fd) override;
  int wait(std::int64_t timeout_ns, PollEvent* out, int max) override;
  void wake() override;

 private:
  struct FdState {
    bool registered = false;
    bool out = false;  // EPOLLOUT is in the registration
    std::int32_t failed_slot = -1;  // index in failed_ while a refused add waits to be reported
  };

  explicit EpollPoller(std::size_t max_fds);
  FdState& state(int fd);
  void remove_failed(int fd, FdState& s);
  int report_failed(PollEvent* out, int max);
  int epoll_wait_ns(std::int64_t timeout_ns, int max_events);

  int epfd_ = -1;
  int wake_fd_ = -1;
  bool have_pwait2_ = true;  // cleared when the kernel answers ENOSYS
  std::size_t max_fds_;
  std::unique_ptr<FdState[]> fds_;        // max_fds_ entries
  std::unique_ptr<int[]> failed_;         // fds whose add failed, dense
  int failed_count_ = 0;
  std::unique_ptr<epoll_event[]> events_;  // epoll_wait's buffer
  int events_cap_;
};

}  // namespace mnv
