// runtime/poller.cc — poller names and the factory that picks a backend (and falls back from
// io_uring to epoll, saying so once, when the kernel or a sandbox refuses io_uring).
#include "runtime/poller.h"

#include <cerrno>
#include <cstring>

#include "mem/log.h"
#include "runtime/poller_epoll.h"
#include "runtime/poller_poll.h"
#include "runtime/poller_uring.h"

namespace mnv {

const char* poller_name(PollerKind kind) {
  switch (kind) {
    case PollerKind::kIoUring:
      return "io_uring";
    case PollerKind::kEpoll:
      return "epoll";
    case PollerKind::kPoll:
      return "poll";
  }
  return "?";
}

bool parse_poller(const char* name, PollerKind* out) {
  for (PollerKind kind : {PollerKind::kIoUring, PollerKind::kEpoll, PollerKind::kPoll}) {
    if (std::strcmp(name, poller_name(kind)) == 0) {
      *out = kind;
      return true;
    }
  }
  return false;
}

namespace {

// The usual reasons, so the log line says what to look at.
const char* io_uring_hint(int err) {
  switch (err) {
    case EPERM:
      return "; sysctl kernel.io_uring_disabled or a seccomp filter forbids it";
    case ENOSYS:
      return "; the kernel lacks it or a seccomp filter hides it";
    case EOPNOTSUPP:
      return "; the kernel predates multishot poll (5.13)";
    default:
      return "";
  }
}

}  // namespace

std::unique_ptr<Poller> Poller::create(PollerKind kind, std::size_t max_fds, int wake_fd) {
  switch (kind) {
    case PollerKind::kIoUring: {
      std::unique_ptr<Poller> poller = IoUringPoller::create(max_fds, {}, wake_fd);
      if (poller) return poller;
      int err = errno;
      const char* name = strerrorname_np(err);
      log_line("mnv: io_uring unavailable (%s: %s%s), using epoll", name != nullptr ? name : "?",
               strerrordesc_np(err) != nullptr ? strerrordesc_np(err) : "unknown error", io_uring_hint(err));
      return EpollPoller::create(max_fds, wake_fd);
    }
    case PollerKind::kEpoll:
      return EpollPoller::create(max_fds, wake_fd);
    case PollerKind::kPoll:
      return PollPoller::create(max_fds, wake_fd);
  }
  errno = EINVAL;
  return nullptr;
}

}  // namespace mnv
