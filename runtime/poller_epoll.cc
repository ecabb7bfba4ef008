// runtime/poller_epoll.cc — the epoll poller (see poller_epoll.h for the design).
#include "runtime/poller_epoll.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "mem/log.h"
#include "runtime/wake_fd.h"

// epoll_pwait2 is declared from glibc 2.35 on.
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#define MNV_HAVE_EPOLL_PWAIT2 1
#else
#define MNV_HAVE_EPOLL_PWAIT2 0
#endif

namespace mnv {
namespace {

// On Linux the EPOLL* bits are the POLL* bits; reporting is a mask.
static_assert(EPOLLIN == POLLIN && EPOLLOUT == POLLOUT && EPOLLRDHUP == POLLRDHUP &&
              EPOLLERR == POLLERR && EPOLLHUP == POLLHUP);
constexpr std::uint32_t kInterestBits = POLLIN | POLLOUT | POLLRDHUP;
constexpr std::uint32_t kReported = POLLIN | POLLOUT | POLLRDHUP | POLLERR | POLLHUP;

constexpr std::uint64_t kWakeKey = ~std::uint64_t{0};  // epoll data of the wake eventfd
constexpr int kMaxBatch = 1024;                        // epoll events taken per wait()

}  // namespace

std::unique_ptr<EpollPoller> EpollPoller::create(std::size_t max_fds, int wake_fd) {
  MNV_ASSERT(max_fds > 0 && max_fds <= static_cast<std::size_t>(INT_MAX));
  std::unique_ptr<EpollPoller> poller(new EpollPoller(max_fds));
  auto fail = [&poller] {
    int err = errno;
    poller.reset();  // closes what was opened
    errno = err;
    return nullptr;
  };
  poller->epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (poller->epfd_ < 0) return fail();
  poller->wake_fd_ = open_wake_fd(wake_fd);
  if (poller->wake_fd_ < 0) return fail();
  epoll_event e{};
  e.events = EPOLLIN;  // level-triggered: wait() drains it
  e.data.u64 = kWakeKey;
  if (::epoll_ctl(poller->epfd_, EPOLL_CTL_ADD, poller->wake_fd_, &e) != 0) return fail();
  return poller;
}

EpollPoller::EpollPoller(std::size_t max_fds)
    : max_fds_(max_fds),
      fds_(new FdState[max_fds]),
      failed_(new int[max_fds]),
      events_cap_(max_fds + 1 < kMaxBatch ? static_cast<int>(max_fds + 1) : kMaxBatch) {
  events_.reset(new epoll_event[events_cap_]);
}

EpollPoller::~EpollPoller() {
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (epfd_ >= 0) ::close(epfd_);
}

EpollPoller::FdState& EpollPoller::state(int fd) {
  MNV_ASSERT(fd >= 0 && static_cast<std::size_t>(fd) < max_fds_);
  return fds_[fd];
}

void EpollPoller::interest(int fd, std::uint32_t events) {
  MNV_ASSERT((events & ~kInterestBits) == 0);
  FdState& s = state(fd);
  // Input edges are watched from the first interest until forget(); output edges only while
  // someone waits for them: a writable socket would otherwise raise an edge at every ACK.
  if (s.failed_slot >= 0) return;
  bool out = (events & POLLOUT) != 0;
  if (s.registered && out == s.out) return;
  if (!s.registered && events == 0) return;
  epoll_event e{};
  e.events = EPOLLET | EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0u);
  e.data.u64 = static_cast<std::uint64_t>(fd);
  ++counts_.submitted;
  if (::epoll_ctl(epfd_, s.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &e) == 0) {
    s.registered = true;
    s.out = out;
    return;
  }
  MNV_ASSERT(failed_count_ < static_cast<int>(max_fds_));
  s.failed_slot = failed_count_;
  failed_[failed_count_++] = fd;
}

void EpollPoller::remove_failed(int fd, FdState& s) {
  int slot = s.failed_slot;
  MNV_ASSERT(slot >= 0 && slot < failed_count_ && failed_[slot] == fd);
  int last = failed_[--failed_count_];
  failed_[slot] = last;
  fds_[last].failed_slot = slot;
  s.failed_slot = -1;
}

void EpollPoller::forget(int fd) {
  FdState& s = state(fd);
  if (s.registered) {
    // Fails only if the caller closed the fd first, which the contract forbids.
    ++counts_.submitted;
    int r = ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    MNV_ASSERT(r == 0);
    s.registered = false;
    s.out = false;
  }
  if (s.failed_slot >= 0) remove_failed(fd, s);
}

int EpollPoller::report_failed(PollEvent* out, int max) {
  int n = 0;
  while (failed_count_ > 0 && n < max) {
    int fd = failed_[failed_count_ - 1];
    remove_failed(fd, fds_[fd]);  // the next interest() tries to add it again
    out[n++] = PollEvent{fd, POLLERR};
  }
  return n;
}

int EpollPoller::epoll_wait_ns(std::int64_t timeout_ns, int max_events) {
#if MNV_HAVE_EPOLL_PWAIT2
  if (timeout_ns > 0 && have_pwait2_) {
    timespec ts;
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    int r = ::epoll_pwait2(epfd_, events_.get(), max_events, &ts, nullptr);
    if (r >= 0 || errno != ENOSYS) return r;
    have_pwait2_ = false;  // a kernel before 5.11
  }
#endif
  int timeout_ms = -1;
  if (timeout_ns >= 0) {
    std::int64_t ms = (timeout_ns + 999999) / 1000000;  // never wake before the timeout
    timeout_ms = ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
  }
  return ::epoll_wait(epfd_, events_.get(), max_events, timeout_ms);
}

int EpollPoller::wait(std::int64_t timeout_ns, PollEvent* out, int max) {
  MNV_ASSERT(max > 0 && timeout_ns >= -1);
  if (failed_count_ > 0) return report_failed(out, max);
  // Events not taken now stay on epoll's ready list for the next wait().
  int r = epoll_wait_ns(timeout_ns, max < events_cap_ ? max : events_cap_);
  if (r < 0) return -errno;
  counts_.completed += static_cast<std::uint64_t>(r);
  int n = 0;
  for (int i = 0; i < r; ++i) {
    const epoll_event& e = events_[i];
    if (e.data.u64 == kWakeKey) {
      drain_wake_fd(wake_fd_);
      continue;
    }
    std::uint32_t events = e.events & kReported;
    if (events != 0) out[n++] = PollEvent{static_cast<int>(e.data.u64), events};
  }
  return n;
}

void EpollPoller::wake() {
  signal_wake_fd(wake_fd_);  // (async-signal-safe: the kernel wakes pollers from its SIGTERM handler)
}

}  // namespace mnv
