// runtime/poller_poll.h — the poll(2) poller: level-triggered, portable, O(watched fds) per wait.
//
// The last resort and a reference for the other two: it watches exactly the events each fd is
// interested in, and an fd with interest 0 is not in the array at all, so a readable fd that no
// one waits on never wakes the loop. The pollfd array is dense (slot 0 is the wake eventfd) with
// a slot index per fd, so interest() and forget() are O(1) (removal swaps in the last slot).
// wait() scans from where the previous one stopped, so when more fds are ready than `max` every
// fd gets its turn. forget() is synchronous: no event of a forgotten fd is reported.
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/poller.h"

namespace mnv {

class PollPoller final : public Poller {
 public:
  // Null with errno set when eventfd fails.
  static std::unique_ptr<PollPoller> create(std::size_t max_fds, int wake_fd = -1);
  ~PollPoller() override;
  PollPoller(const PollPoller&) = delete;
  PollPoller& operator=(const PollPoller&) = delete;

  PollerKind kind() const override { return PollerKind::kPoll; }
  void interest(int fd, std::uint32_t events) override;
  void forget(int fd) override;
  int wait(std::int64_t timeout_ns, PollEvent* out, int max) override;
  void wake() override;

  // fds in the pollfd array, the wake eventfd not counted (for tests).
  int watched() const { return count_ - 1; }

 private:
  explicit PollPoller(std::size_t max_fds);
  std::int32_t& slot_of(int fd);
  void remove(int fd, std::int32_t& slot);

  int wake_fd_ = -1;
  std::size_t max_fds_;
  std::unique_ptr<pollfd[]> pfds_;       // max_fds_ + 1 entries; [0, count_) in use
  std::unique_ptr<std::int32_t[]> slot_;  // per fd: its index in pfds_, or -1
  int count_ = 1;                         // slot 0: the wake eventfd
  int cursor_ = 1;                        // where the next wait() starts scanning
};

}  // namespace mnv
