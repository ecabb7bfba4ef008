// runtime/wake_fd.cc — the wake eventfd (see wake_fd.h).
#include "runtime/wake_fd.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "mem/log.h"

namespace mnv {

int open_wake_fd(int shared) {
  if (shared >= 0) return ::fcntl(shared, F_DUPFD_CLOEXEC, 0);
  return ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

void signal_wake_fd(int fd) {
  int saved_errno = errno;
  std::uint64_t one = 1;
  ssize_t r = ::write(fd, &one, sizeof one);
  MNV_ASSERT(r == sizeof one || (r < 0 && errno == EAGAIN));
  errno = saved_errno;
}

void drain_wake_fd(int fd) {
  std::uint64_t count;
  ssize_t r = ::read(fd, &count, sizeof count);
  MNV_ASSERT(r == sizeof count || (r < 0 && errno == EAGAIN));
}

}  // namespace mnv
