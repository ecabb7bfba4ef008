// runtime/poller_poll.cc — the poll(2) poller (see poller_poll.h for the design).
#include "runtime/poller_poll.h"

#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "mem/log.h"
#include "runtime/wake_fd.h"

namespace mnv {
namespace {

constexpr std::uint32_t kInterestBits = POLLIN | POLLOUT | POLLRDHUP;
constexpr std::uint32_t kReported = POLLIN | POLLOUT | POLLRDHUP | POLLERR | POLLHUP;

std::uint32_t translate(short revents) {
  std::uint32_t events = static_cast<std::uint16_t>(revents) & kReported;
  if ((revents & POLLNVAL) != 0) events |= POLLERR;  // not an open fd: the op will say why
  return events;
}

}  // namespace

std::unique_ptr<PollPoller> PollPoller::create(std::size_t max_fds, int wake_fd) {
  MNV_ASSERT(max_fds > 0 && max_fds < static_cast<std::size_t>(INT_MAX));
  std::unique_ptr<PollPoller> poller(new PollPoller(max_fds));
  poller->wake_fd_ = open_wake_fd(wake_fd);
  if (poller->wake_fd_ < 0) return nullptr;
  poller->pfds_[0] = pollfd{poller->wake_fd_, POLLIN, 0};
  return poller;
}

PollPoller::PollPoller(std::size_t max_fds)
    : max_fds_(max_fds), pfds_(new pollfd[max_fds + 1]), slot_(new std::int32_t[max_fds]) {
  for (std::size_t fd = 0; fd < max_fds; ++fd) slot_[fd] = -1;
}

PollPoller::~PollPoller() {
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

std::int32_t& PollPoller::slot_of(int fd) {
  MNV_ASSERT(fd >= 0 && static_cast<std::size_t>(fd) < max_fds_);
  return slot_[fd];
}

void PollPoller::remove(int fd, std::int32_t& slot) {
  MNV_ASSERT(slot >= 1 && slot < count_ && pfds_[slot].fd == fd);
  int last = --count_;
  if (slot != last) {
    pfds_[slot] = pfds_[last];
    slot_[pfds_[slot].fd] = slot;
  }
  slot = -1;
}

void PollPoller::interest(int fd, std::uint32_t events) {
  MNV_ASSERT((events & ~kInterestBits) == 0);
  std::int32_t& slot = slot_of(fd);
  if (events == 0) {
    if (slot >= 0) remove(fd, slot);
    return;
  }
  if (slot < 0) {
    MNV_ASSERT(static_cast<std::size_t>(count_) <= max_fds_);
    slot = count_++;
    pfds_[slot].fd = fd;
    pfds_[slot].revents = 0;
  }
  pfds_[slot].events = static_cast<short>(events);
}

void PollPoller::forget(int fd) {
  std::int32_t& slot = slot_of(fd);
  if (slot >= 0) remove(fd, slot);
}

int PollPoller::wait(std::int64_t timeout_ns, PollEvent* out, int max) {
  MNV_ASSERT(max > 0 && timeout_ns >= -1);
  timespec ts;
  timespec* tsp = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    tsp = &ts;
  }
  int ready = ::ppoll(pfds_.get(), static_cast<nfds_t>(count_), tsp, nullptr);
  counts_.submitted += static_cast<std::uint64_t>(count_);
  if (ready < 0) return -errno;
  counts_.completed += static_cast<std::uint64_t>(ready);
  if (pfds_[0].revents != 0) {
    drain_wake_fd(wake_fd_);
    --ready;
  }
  // Scan the fds' slots [1, count_) once, starting at cursor_ and wrapping around.
  int watched = count_ - 1;
  if (ready == 0 || watched == 0) return 0;
  int i = cursor_ >= 1 && cursor_ < count_ ? cursor_ : 1;
  int n = 0;
  for (int k = 0; k < watched && ready > 0 && n < max; ++k) {
    const pollfd& p = pfds_[i];
    if (++i == count_) i = 1;
    if (p.revents == 0) continue;
    --ready;
    std::uint32_t events = translate(p.revents);
    if (events != 0) out[n++] = PollEvent{p.fd, events};
  }
  cursor_ = i;  // just past the last fd looked at
  return n;
}

void PollPoller::wake() {
  signal_wake_fd(wake_fd_);  // (async-signal-safe: the kernel wakes pollers from its SIGTERM handler)
}

}  // namespace mnv
