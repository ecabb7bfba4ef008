// Tests of the three pollers on real fds (socketpairs, pipes, TCP on 127.0.0.1): readiness,
// hang-ups, timeouts, no stale events after forget() and fd-number reuse, wake() from other
// threads, many fds, the poll backend's exact interest, io_uring's ring details, and the fallback
// from io_uring to epoll when a seccomp filter refuses io_uring_setup. Nothing sleeps to wait for
// an event: every test waits on the poller itself, with bounded timeouts.
#include "runtime/poller.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <liburing.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <new>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "runtime/poller_poll.h"
#include "runtime/poller_uring.h"

namespace mnv {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxFds = 4096;
constexpr std::int64_t kMs = 1000000;
constexpr std::int64_t kPatience = 5000 * kMs;  // bound on waiting for an event that must come
constexpr std::int64_t kQuiet = 50 * kMs;       // how long "nothing is reported" is watched

std::int64_t since_ns(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
}

// Owns the fds a test opens; closes whatever is still open at the end.
class Fds {
 public:
  Fds() = default;
  Fds(const Fds&) = delete;
  Fds& operator=(const Fds&) = delete;
  ~Fds() {
    for (int fd : fds_) ::close(fd);
  }
  int own(int fd) {
    EXPECT_GE(fd, 0) << strerror(errno);
    if (fd >= 0 && std::find(fds_.begin(), fds_.end(), fd) == fds_.end()) fds_.push_back(fd);
    return fd;
  }
  void close(int fd) {
    fds_.erase(std::remove(fds_.begin(), fds_.end(), fd), fds_.end());
    ASSERT_EQ(::close(fd), 0);
  }
  void socket_pair(int* a, int* b) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0) << strerror(errno);
    *a = own(sv[0]);
    *b = own(sv[1]);
  }
  // A connected TCP pair on 127.0.0.1: *client (blocking) and *server (accepted, non-blocking).
  void tcp_pair(int* client, int* server) {
    int l = own(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&addr), len), 0);
    ASSERT_EQ(::listen(l, 1), 0);
    ASSERT_EQ(::getsockname(l, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    *client = own(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(::connect(*client, reinterpret_cast<sockaddr*>(&addr), len), 0);
    *server = own(::accept4(l, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  }
  void pipe(int* r, int* w) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0) << strerror(errno);
    *r = own(p[0]);
    *w = own(p[1]);
  }
  // Makes `fd` (already closed) the number of one end of a fresh socketpair; returns the other.
  int reuse_number(int fd) {
    int a, b;
    socket_pair(&a, &b);
    if (b == fd) std::swap(a, b);
    if (a != fd) {
      EXPECT_EQ(::dup2(a, fd), fd) << strerror(errno);
      close(a);
      own(fd);
    }
    return b;
  }

 private:
  std::vector<int> fds_;
};

void drain(int fd) {
  char buf[4096];
  while (::read(fd, buf, sizeof(buf)) > 0) {
  }
}

// One wait() as the runtime's loop does it: EINTR (which the contract returns) is retried.
int wait_once(Poller& p, std::int64_t timeout_ns, PollEvent* out, int max) {
  int n;
  do {
    n = p.wait(timeout_ns, out, max);
  } while (n == -EINTR);
  return n;
}

// Accumulates what a poller reports, per fd, across wait() calls: a test can wait for one fd's
// event without losing another fd's event reported by the same wait().
class Watcher {
 public:
  explicit Watcher(Poller& poller) : poller_(poller) {}

  // Waits (bounded by kPatience) until `fd` was reported with all of `bits`; returns its bits.
  std::uint32_t until(int fd, std::uint32_t bits) {
    Clock::time_point start = Clock::now();
    while ((seen(fd) & bits) != bits) {
      std::int64_t left = kPatience - since_ns(start);
      if (left <= 0) break;
      if (!poll_once(left)) break;
    }
    return seen(fd);
  }
  // Waits for `span_ns` and returns what `fd` was reported with, before and during.
  std::uint32_t during(int fd, std::int64_t span_ns) {
    Clock::time_point start = Clock::now();
    for (std::int64_t left = span_ns; left > 0; left = span_ns - since_ns(start)) {
      if (!poll_once(left)) break;
    }
    return seen(fd);
  }
  // Forgets what was seen for `fd`, to wait for a new report.
  void clear(int fd) { seen_.erase(fd); }
  std::uint32_t seen(int fd) const {
    auto it = seen_.find(fd);
    return it == seen_.end() ? 0 : it->second;
  }
  std::size_t fds_seen() const { return seen_.size(); }

  // One wait(); false (with a test failure) on an error.
  bool poll_once(std::int64_t timeout_ns, int max = kMax) {
    EXPECT_LE(max, kMax);
    out_[kMax] = PollEvent{-7, 0xdead};  // sentinel: wait() must not write past max
    int n = poller_.wait(timeout_ns, out_, max);
    if (n == -EINTR) n = 0;  // the caller retries (see poller_uring.h on EINTR)
    EXPECT_GE(n, 0) << strerror(-n);
    EXPECT_LE(n, max);
    EXPECT_EQ(out_[kMax].fd, -7);
    if (n < 0) return false;
    for (int i = 0; i < n; ++i) {
      EXPECT_NE(out_[i].events, 0u) << "fd " << out_[i].fd;
      EXPECT_EQ(out_[i].events & ~(POLLIN | POLLOUT | POLLRDHUP | POLLERR | POLLHUP | kTransferDone), 0u);
      seen_[out_[i].fd] |= out_[i].events;
    }
    last_n_ = n;
    return true;
  }
  int last_n() const { return last_n_; }
  const PollEvent& out(int i) const { return out_[i]; }

  static constexpr int kMax = 64;

 private:
  Poller& poller_;
  PollEvent out_[kMax + 1];
  std::map<int, std::uint32_t> seen_;
  int last_n_ = 0;
};

class PollerTest : public ::testing::TestWithParam<PollerKind> {
 protected:
  void SetUp() override {
    poller_ = Poller::create(GetParam(), kMaxFds);
    ASSERT_NE(poller_, nullptr) << strerror(errno);
  }
  Poller& p() { return *poller_; }

  std::unique_ptr<Poller> poller_;
  Fds fds_;  // closed before the poller goes
};

TEST_P(PollerTest, ReadableAfterThePeerWritesAndAgainAfterNewData) {
  int a, b;
  fds_.socket_pair(&a, &b);
  p().interest(a, POLLIN);
  Watcher w(p());
  ASSERT_EQ(::write(b, "x", 1), 1);
  EXPECT_TRUE(w.until(a, POLLIN) & POLLIN);

  // The kernel read everything and blocks again: new data must be reported again.
  drain(a);
  w.clear(a);
  ASSERT_EQ(::write(b, "y", 1), 1);
  EXPECT_TRUE(w.until(a, POLLIN) & POLLIN);
}

TEST_P(PollerTest, WaitZeroReportsWhatIsReadyWithoutBlocking) {
  int a, b;
  fds_.socket_pair(&a, &b);
  ASSERT_EQ(::write(b, "x", 1), 1);
  p().interest(a, POLLIN);
  Watcher w(p());
  Clock::time_point start = Clock::now();
  ASSERT_TRUE(w.poll_once(0));
  EXPECT_LT(since_ns(start), 100 * kMs);
  EXPECT_TRUE(w.seen(a) & POLLIN);
}

TEST_P(PollerTest, WritableOnAFreshSocket) {
  int a, b;
  fds_.socket_pair(&a, &b);
  p().interest(a, POLLOUT);
  Watcher w(p());
  EXPECT_TRUE(w.until(a, POLLOUT) & POLLOUT);
}

TEST_P(PollerTest, RdhupAfterPeerShutdownAndHupAfterPeerClose) {
  int a, b;
  fds_.socket_pair(&a, &b);
  p().interest(a, POLLIN | POLLRDHUP);
  Watcher w(p());
  ASSERT_EQ(::shutdown(b, SHUT_WR), 0);
  EXPECT_TRUE(w.until(a, POLLRDHUP) & POLLRDHUP);
  fds_.close(b);
  EXPECT_TRUE(w.until(a, POLLHUP) & POLLHUP);
}

TEST_P(PollerTest, TcpOnLoopback) {
  int listener = fds_.own(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
  ASSERT_EQ(::listen(listener, 16), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  p().interest(listener, POLLIN);
  Watcher w(p());

  int client = fds_.own(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  int r = ::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ASSERT_TRUE(r == 0 || errno == EINPROGRESS) << strerror(errno);
  p().interest(client, POLLOUT);
  EXPECT_TRUE(w.until(client, POLLOUT) & POLLOUT);
  EXPECT_TRUE(w.until(listener, POLLIN) & POLLIN);

  int server = fds_.own(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  p().interest(server, POLLIN | POLLRDHUP);
  ASSERT_EQ(::write(client, "ping", 4), 4);
  EXPECT_TRUE(w.until(server, POLLIN) & POLLIN);
  char buf[8];
  EXPECT_EQ(::read(server, buf, sizeof(buf)), 4);

  p().forget(client);
  fds_.close(client);
  EXPECT_TRUE(w.until(server, POLLRDHUP) & POLLRDHUP);
}

TEST_P(PollerTest, TimeoutWithNothingReadyReturnsZero) {
  int r, unused;
  fds_.pipe(&r, &unused);
  p().interest(r, POLLIN);
  PollEvent out[4];

  Clock::time_point start = Clock::now();
  EXPECT_EQ(wait_once(p(), kMs, out, 4), 0);
  std::int64_t took = since_ns(start);
  EXPECT_GE(took, kMs * 95 / 100);
  EXPECT_LT(took, 1000 * kMs);

  start = Clock::now();
  EXPECT_EQ(wait_once(p(), 0, out, 4), 0);
  EXPECT_LT(since_ns(start), 100 * kMs);

  p().forget(r);
  start = Clock::now();
  EXPECT_EQ(wait_once(p(), 0, out, 4), 0);
  EXPECT_LT(since_ns(start), 100 * kMs);
}

TEST_P(PollerTest, ForgottenFdWhoseNumberIsReusedAtOnceGetsNoStaleEvents) {
  int a, b;
  fds_.socket_pair(&a, &b);
  p().interest(a, POLLIN);
  ASSERT_EQ(::write(b, "x", 1), 1);  // the old file is readable

  p().forget(a);
  fds_.close(a);
  int d = fds_.reuse_number(a);  // a new file, not readable, with the same number
  p().interest(a, POLLIN);
  Watcher w(p());
  EXPECT_FALSE(w.during(a, kQuiet) & POLLIN);

  // The old file is really gone once a wait() ran: its peer reads end of file.
  char c;
  ssize_t got;
  Clock::time_point start = Clock::now();
  while ((got = ::read(b, &c, 1)) < 0 && since_ns(start) < kPatience) ASSERT_TRUE(w.poll_once(kMs));
  EXPECT_EQ(got, 0);

  // And the new registration works.
  ASSERT_EQ(::write(d, "y", 1), 1);
  EXPECT_TRUE(w.until(a, POLLIN) & POLLIN);
}

TEST_P(PollerTest, ForgottenLiveRegistrationWithAnEventOnItsWayGetsNoStaleEvents) {
  int a, b;
  fds_.socket_pair(&a, &b);
  p().interest(a, POLLIN);
  Watcher w(p());
  ASSERT_TRUE(w.poll_once(0));       // the registration is live in the backend now
  ASSERT_EQ(::write(b, "x", 1), 1);  // and an event for the old file is on its way

  p().forget(a);
  fds_.close(a);
  int d = fds_.reuse_number(a);
  p().interest(a, POLLIN);
  w.clear(a);
  EXPECT_FALSE(w.during(a, kQuiet) & POLLIN);

  ASSERT_EQ(::write(d, "y", 1), 1);
  EXPECT_TRUE(w.until(a, POLLIN) & POLLIN);
}

TEST_P(PollerTest, EventAlreadyQueuedForAForgottenFdIsNotReported) {
  int a1, b1, a2, b2;
  fds_.socket_pair(&a1, &b1);
  fds_.socket_pair(&a2, &b2);
  ASSERT_EQ(::write(b1, "x", 1), 1);
  ASSERT_EQ(::write(b2, "x", 1), 1);
  p().interest(a1, POLLIN);
  p().interest(a2, POLLIN);

  // Take one event; the other fd's may already sit in the backend (io_uring's CQ).
  Watcher w(p());
  Clock::time_point start = Clock::now();
  while (w.fds_seen() == 0 && since_ns(start) < kPatience) ASSERT_TRUE(w.poll_once(kPatience, 1));
  ASSERT_EQ(w.fds_seen(), 1u);
  int other = w.seen(a1) != 0 ? a2 : a1;
  ASSERT_EQ(w.seen(other), 0u);

  p().forget(other);
  fds_.close(other);
  int peer = fds_.reuse_number(other);
  p().interest(other, POLLIN);
  EXPECT_FALSE(w.during(other, kQuiet) & POLLIN);

  ASSERT_EQ(::write(peer, "y", 1), 1);
  EXPECT_TRUE(w.until(other, POLLIN) & POLLIN);
}

TEST_P(PollerTest, ForgetAndZeroInterestOnUnregisteredFdsAreHarmless) {
  int a, b;
  fds_.socket_pair(&a, &b);
  p().forget(a);
  p().interest(a, 0);
  p().forget(a);
  p().interest(a, POLLIN);
  p().interest(a, POLLIN | POLLOUT);  // a change after registration
  ASSERT_EQ(::write(b, "x", 1), 1);
  Watcher w(p());
  EXPECT_TRUE(w.until(a, POLLIN) & POLLIN);
}

TEST_P(PollerTest, WakeFromAnotherThreadEndsABlockedWait) {
  std::thread waker([this] {
    // Only gives the main thread time to block first; correctness does not depend on it.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    p().wake();
  });
  PollEvent out[4];
  int n = wait_once(p(), -1, out, 4);
  waker.join();
  EXPECT_EQ(n, 0);  // a wake is not a user event
}

TEST_P(PollerTest, WakeBeforeWaitIsKeptThenDrained) {
  p().wake();
  PollEvent out[4];
  EXPECT_EQ(wait_once(p(), -1, out, 4), 0);
  p().wake();
  EXPECT_EQ(wait_once(p(), INT64_MAX, out, 4), 0);  // how the kernel says "no timer armed"

  // Drained: a later wait sleeps its whole timeout (one spurious early return is allowed).
  bool slept = false;
  for (int i = 0; i < 3 && !slept; ++i) {
    Clock::time_point start = Clock::now();
    EXPECT_EQ(wait_once(p(), 2 * kMs, out, 4), 0);
    slept = since_ns(start) >= 2 * kMs * 95 / 100;
  }
  EXPECT_TRUE(slept);
}

TEST_P(PollerTest, NoWakeIsLostUnderManyWakers) {
  constexpr int kThreads = 4;
  constexpr int kWakes = 2000;
  std::atomic<int> done{0};
  std::vector<std::thread> wakers;
  for (int t = 0; t < kThreads; ++t) {
    wakers.emplace_back([this, &done] {
      for (int i = 0; i < kWakes; ++i) p().wake();
      done.fetch_add(1);
      p().wake();  // after the store: the waiter must see it
    });
  }
  PollEvent out[4];
  while (done.load() < kThreads) ASSERT_GE(wait_once(p(), -1, out, 4), 0);
  for (std::thread& t : wakers) t.join();
}

TEST_P(PollerTest, FiveHundredFdsAreAllReported) {
  constexpr int kPairs = 500;
  std::vector<int> readers;
  for (int i = 0; i < kPairs; ++i) {
    int a, b;
    fds_.socket_pair(&a, &b);
    ASSERT_EQ(::write(b, "x", 1), 1);
    p().interest(a, POLLIN);
    readers.push_back(a);
  }
  // Nothing is read, so the level-triggered backend keeps reporting everything: with 64 events
  // per wait, each fd must still get its turn.
  Watcher w(p());
  Clock::time_point start = Clock::now();
  while (w.fds_seen() < readers.size() && since_ns(start) < kPatience) ASSERT_TRUE(w.poll_once(kPatience));
  for (int fd : readers) EXPECT_TRUE(w.seen(fd) & POLLIN) << "fd " << fd;
  EXPECT_EQ(w.fds_seen(), readers.size());
}

std::string kind_name(const ::testing::TestParamInfo<PollerKind>& info) {
  switch (info.param) {
    case PollerKind::kIoUring:
      return "IoUring";
    case PollerKind::kEpoll:
      return "Epoll";
    case PollerKind::kPoll:
      return "Poll";
  }
  return "Unknown";
}

INSTANTIATE_TEST_SUITE_P(AllBackends, PollerTest,
                         ::testing::Values(PollerKind::kIoUring, PollerKind::kEpoll, PollerKind::kPoll),
                         kind_name);

TEST(PollerNameTest, NamesRoundTrip) {
  for (PollerKind kind : {PollerKind::kIoUring, PollerKind::kEpoll, PollerKind::kPoll}) {
    PollerKind parsed = PollerKind::kPoll;
    ASSERT_TRUE(parse_poller(poller_name(kind), &parsed));
    EXPECT_EQ(parsed, kind);
  }
  EXPECT_STREQ(poller_name(PollerKind::kIoUring), "io_uring");
  PollerKind unchanged = PollerKind::kEpoll;
  EXPECT_FALSE(parse_poller("uring", &unchanged));
  EXPECT_FALSE(parse_poller("", &unchanged));
  EXPECT_EQ(unchanged, PollerKind::kEpoll);
}

TEST(PollPollerTest, WatchesExactlyTheInterest) {
  std::unique_ptr<PollPoller> p = PollPoller::create(kMaxFds);
  ASSERT_NE(p, nullptr);
  Fds fds;
  int a, b;
  fds.socket_pair(&a, &b);
  ASSERT_EQ(::write(b, "x", 1), 1);  // a is readable and writable from here on

  p->interest(a, POLLIN);
  Watcher w(*p);
  EXPECT_EQ(w.until(a, POLLIN), static_cast<std::uint32_t>(POLLIN));  // POLLOUT not asked for

  p->interest(a, 0);  // level-triggered: not watched at all now
  EXPECT_EQ(p->watched(), 0);
  w.clear(a);
  EXPECT_EQ(w.during(a, kQuiet), 0u);

  p->interest(a, POLLOUT);
  EXPECT_EQ(w.until(a, POLLOUT), static_cast<std::uint32_t>(POLLOUT));
  p->forget(a);
  EXPECT_EQ(p->watched(), 0);
}

TEST(PollPollerTest, SwapRemoveKeepsTheOtherFdsWatched) {
  std::unique_ptr<PollPoller> p = PollPoller::create(kMaxFds);
  ASSERT_NE(p, nullptr);
  Fds fds;
  int a[4], b[4];
  for (int i = 0; i < 4; ++i) {
    fds.socket_pair(&a[i], &b[i]);
    p->interest(a[i], POLLIN);
  }
  p->interest(a[0], 0);  // the last slot moves into the first
  p->forget(a[2]);
  EXPECT_EQ(p->watched(), 2);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(::write(b[i], "x", 1), 1);
  Watcher w(*p);
  EXPECT_TRUE(w.until(a[1], POLLIN) & POLLIN);
  EXPECT_TRUE(w.until(a[3], POLLIN) & POLLIN);
  EXPECT_EQ(w.seen(a[0]), 0u);
  EXPECT_EQ(w.seen(a[2]), 0u);
}

// io_uring itself, as the factory would try it; false where the kernel or a sandbox refuses it.
bool io_uring_works() {
  io_uring ring;
  if (io_uring_queue_init(4, &ring, 0) != 0) return false;
  io_uring_queue_exit(&ring);
  return true;
}

// A readable pipe is reported: the smoke test of a poller from any path.
void expect_works(Poller& p) {
  Fds fds;
  int r, wr;
  fds.pipe(&r, &wr);
  p.interest(r, POLLIN);
  ASSERT_EQ(::write(wr, "x", 1), 1);
  Watcher w(p);
  EXPECT_TRUE(w.until(r, POLLIN) & POLLIN);
  p.forget(r);
}

TEST(IoUringPollerTest, FactoryGivesIoUringWhereTheKernelAllowsIt) {
  std::unique_ptr<Poller> p = Poller::create(PollerKind::kIoUring, kMaxFds);
  ASSERT_NE(p, nullptr);
  // On the development machine (Linux 6.18, io_uring enabled) this is io_uring.
  EXPECT_EQ(p->kind(), io_uring_works() ? PollerKind::kIoUring : PollerKind::kEpoll);
  expect_works(*p);
}

TEST(IoUringPollerTest, UsesDeferTaskrunFromLinux61AndWorksWithPlainFlags) {
  if (!io_uring_works()) GTEST_SKIP() << "io_uring unavailable here";
  utsname u;
  ASSERT_EQ(::uname(&u), 0);
  int major = 0, minor = 0;
  ASSERT_EQ(std::sscanf(u.release, "%d.%d", &major, &minor), 2);

  std::unique_ptr<IoUringPoller> fast = IoUringPoller::create(kMaxFds);
  ASSERT_NE(fast, nullptr) << strerror(errno);
  EXPECT_EQ(fast->defer_taskrun(), major > 6 || (major == 6 && minor >= 1));
  expect_works(*fast);

  IoUringOptions plain;
  plain.defer_taskrun = false;
  std::unique_ptr<IoUringPoller> p = IoUringPoller::create(kMaxFds, plain);
  ASSERT_NE(p, nullptr) << strerror(errno);
  EXPECT_FALSE(p->defer_taskrun());
  expect_works(*p);
  p->wake();
  PollEvent out[1];
  EXPECT_EQ(wait_once(*p, -1, out, 1), 0);
}

// A tiny ring: registrations overflow the SQ (submitted early) and events overflow the CQ, which
// ends multishot polls; they must be armed again and every fd still reported.
class IoUringSmallRingTest : public ::testing::TestWithParam<bool> {};

TEST_P(IoUringSmallRingTest, ManyFdsThroughATinyRing) {
  if (!io_uring_works()) GTEST_SKIP() << "io_uring unavailable here";
  IoUringOptions options;
  options.sq_entries = 4;
  options.cq_entries = 8;
  options.defer_taskrun = GetParam();
  std::unique_ptr<IoUringPoller> p = IoUringPoller::create(kMaxFds, options);
  ASSERT_NE(p, nullptr) << strerror(errno);
  Fds fds;
  constexpr int kPairs = 200;
  std::vector<int> readers, writers;
  for (int i = 0; i < kPairs; ++i) {
    int a, b;
    fds.socket_pair(&a, &b);
    ASSERT_EQ(::write(b, "x", 1), 1);
    p->interest(a, POLLIN);
    readers.push_back(a);
    writers.push_back(b);
  }
  Watcher w(*p);
  Clock::time_point start = Clock::now();
  while (w.fds_seen() < readers.size() && since_ns(start) < kPatience) ASSERT_TRUE(w.poll_once(kPatience));
  EXPECT_EQ(w.fds_seen(), readers.size());
  EXPECT_GT(p->rearms(), 0u);  // 200 first CQEs cannot all fit in a CQ of 8

  // After the overflow, every registration still reports new data.
  for (int fd : readers) {
    drain(fd);
    w.clear(fd);
  }
  for (int fd : writers) ASSERT_EQ(::write(fd, "y", 1), 1);
  start = Clock::now();
  while (w.fds_seen() < readers.size() && since_ns(start) < kPatience) ASSERT_TRUE(w.poll_once(kPatience));
  for (int fd : readers) EXPECT_TRUE(w.seen(fd) & POLLIN) << "fd " << fd;
}

INSTANTIATE_TEST_SUITE_P(DeferTaskrun, IoUringSmallRingTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "DeferTaskrun" : "PlainFlags");
                         });

// Completion mode (runtime/completion_io.h): receives and sends performed by the poller.
class IoUringCompletionTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (!io_uring_works()) GTEST_SKIP() << "io_uring unavailable here";
    IoUringOptions options;
    options.defer_taskrun = GetParam();
    p_ = IoUringPoller::create(kMaxFds, options);
    ASSERT_NE(p_, nullptr) << strerror(errno);
    utsname u;
    ASSERT_EQ(::uname(&u), 0);
    int major = 0, minor = 0;
    ASSERT_EQ(std::sscanf(u.release, "%d.%d", &major, &minor), 2);
    bool expected = major >= 6;  // IORING_REGISTER_SYNC_CANCEL: Linux 6.0
    EXPECT_EQ(p_->completion_io() != nullptr, expected);
    if (p_->completion_io() == nullptr) GTEST_SKIP() << "no completion mode before Linux 6.0";
  }
  void TearDown() override {
    fds_.~Fds();  // close before the poller goes
    new (&fds_) Fds();
  }
  IoUringPoller& p() { return *p_; }
  // Waits (bounded) until t has finished; returns its result (or kPending on timeout).
  static constexpr std::int32_t kPending = INT32_MIN;
  std::int32_t until_done(Watcher& w, Transfer& t) {
    Clock::time_point start = Clock::now();
    while (!t.done()) {
      if (since_ns(start) > kPatience) return kPending;
      w.poll_once(kPatience - since_ns(start));
    }
    return t.take();
  }

  std::unique_ptr<IoUringPoller> p_;
  Fds fds_;
};

TEST_P(IoUringCompletionTest, ReceiveFinishesWhenDataArrivesAndIsReportedOnceAsDone) {
  int a, b;
  fds_.socket_pair(&a, &b);
  Transfers x;
  char buf[64] = {};
  p().recv(a, &x, buf, sizeof buf, /*poll_first=*/true);
  p().interest(a, POLLIN | POLLRDHUP);  // the receive stands in for a readiness watch
  Watcher w(p());
  EXPECT_EQ(w.during(a, kQuiet), 0u);
  EXPECT_FALSE(p().polling(a));
  EXPECT_TRUE(x.rx.busy());
  EXPECT_FALSE(x.rx.done());
  ASSERT_EQ(::write(b, "hello", 5), 5);
  EXPECT_EQ(w.until(a, kTransferDone), kTransferDone);  // once, as a completion (no POLLIN)
  ASSERT_TRUE(x.rx.done());
  EXPECT_FALSE(x.rx.more);
  EXPECT_EQ(x.rx.take(), 5);
  EXPECT_FALSE(x.rx.busy());
  EXPECT_EQ(std::string(buf, 5), "hello");

  // Data already there: a receive takes it at once (and says when more is left).
  ASSERT_EQ(::write(b, "0123456789", 10), 10);
  p().recv(a, &x, buf, 4, /*poll_first=*/false);
  w.clear(a);
  EXPECT_EQ(w.until(a, kTransferDone), kTransferDone);
  EXPECT_TRUE(x.rx.more);
  EXPECT_EQ(x.rx.take(), 4);
  EXPECT_EQ(std::string(buf, 4), "0123");
  p().detach(a, &x);
  p().forget(a);
}

TEST_P(IoUringCompletionTest, EndOfInputIsZeroAndAResetIsEconnreset) {
  int a, b;
  fds_.socket_pair(&a, &b);
  Transfers x;
  char buf[16];
  p().recv(a, &x, buf, sizeof buf, true);
  Watcher w(p());
  ASSERT_EQ(::shutdown(b, SHUT_WR), 0);
  EXPECT_EQ(until_done(w, x.rx), 0);
  p().forget(a);

  // TCP: the peer closes with unread data, which resets the connection.
  int c, s;
  fds_.tcp_pair(&c, &s);
  Transfers y;
  p().recv(s, &y, buf, sizeof buf, true);
  ASSERT_EQ(::write(s, "unread", 6), 6);  // c never reads it
  fds_.close(c);
  EXPECT_EQ(until_done(w, y.rx), -ECONNRESET);
  p().forget(s);
}

TEST_P(IoUringCompletionTest, ReceiveOnAPipeSaysEnotsock) {
  int r, wr;
  fds_.pipe(&r, &wr);
  Transfers x;
  char buf[8];
  p().recv(r, &x, buf, sizeof buf, false);
  Watcher w(p());
  EXPECT_EQ(until_done(w, x.rx), -ENOTSOCK);
  p().forget(r);
}

TEST_P(IoUringCompletionTest, AfterEnotsockTheDetachedFdIsWatchedByReadiness) {
  // A socket whose fd is a pipe goes on with readv and waits for POLLIN: with no transfer left to
  // stand in for it, the fd needs its readiness poll (else the wait would never end).
  int r, wr;
  fds_.pipe(&r, &wr);
  Transfers x;
  char buf[8];
  p().recv(r, &x, buf, sizeof buf, false);
  p().interest(r, POLLIN | POLLRDHUP);
  Watcher w(p());
  EXPECT_EQ(until_done(w, x.rx), -ENOTSOCK);
  p().detach(r, &x);
  w.poll_once(0);
  EXPECT_TRUE(p().polling(r));
  w.clear(r);
  ASSERT_EQ(::write(wr, "x", 1), 1);
  EXPECT_TRUE(w.until(r, POLLIN) & POLLIN);
  p().forget(r);
}

TEST_P(IoUringCompletionTest, SendOfTwoPiecesLargerThanTheSocketBufferAllArrives) {
  int a, b;
  fds_.socket_pair(&a, &b);
  int small = 4096;
  ASSERT_EQ(::setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  std::string one(300000, 'a'), two(200000, 'b');
  for (std::size_t i = 0; i < one.size(); i += 997) one[i] = static_cast<char>('0' + i % 10);
  iovec iov[2] = {{one.data(), one.size()}, {two.data(), two.size()}};
  Transfers x;
  p().send(a, &x, iov, 2);
  p().interest(a, POLLOUT);
  Watcher w(p());
  EXPECT_FALSE(p().polling(a));  // the send stands in for a POLLOUT watch
  // It cannot finish before the peer reads: the poller goes on after every short send.
  std::string got;
  char buf[65536];
  Clock::time_point start = Clock::now();
  while (since_ns(start) < kPatience) {
    ssize_t n = ::read(b, buf, sizeof buf);
    if (n > 0) got.append(buf, static_cast<std::size_t>(n));
    if (x.tx.done() && got.size() == one.size() + two.size()) break;
    w.poll_once(n > 0 ? 0 : kMs);
  }
  ASSERT_TRUE(x.tx.done());
  EXPECT_EQ(x.tx.take(), static_cast<std::int32_t>(one.size() + two.size()));
  EXPECT_TRUE(got == one + two);
  EXPECT_TRUE(w.seen(a) & kTransferDone);  // reported: someone waited for POLLOUT
  p().forget(a);
}

TEST_P(IoUringCompletionTest, AFinishedSendIsOnlyReportedToSomeoneWaitingForIt) {
  int a, b;
  fds_.socket_pair(&a, &b);
  Transfers x;
  iovec iov{const_cast<char*>("reply"), 5};
  p().send(a, &x, &iov, 1);
  p().interest(a, POLLIN | POLLRDHUP);  // the thread waits for input, not for the send
  Watcher w(p());
  EXPECT_EQ(until_done(w, x.tx), 5);
  EXPECT_EQ(w.seen(a), 0u);
  char buf[8];
  EXPECT_EQ(::read(b, buf, sizeof buf), 5);
  EXPECT_TRUE(p().polling(a));  // input is watched by readiness: no receive stands in for it

  // A failed send is always reported (its result says what failed).
  fds_.close(b);
  p().send(a, &x, &iov, 1);
  EXPECT_EQ(until_done(w, x.tx), -EPIPE);
  EXPECT_TRUE(w.seen(a) & kTransferDone);
  p().forget(a);
}

TEST_P(IoUringCompletionTest, CancelledReceiveNeverWritesItsBufferAndReadinessTakesOver) {
  int a, b;
  fds_.socket_pair(&a, &b);
  Transfers x;
  char buf[16];
  std::memset(buf, '.', sizeof buf);
  p().recv(a, &x, buf, sizeof buf, true);
  p().interest(a, POLLIN | POLLRDHUP);
  Watcher w(p());
  EXPECT_EQ(w.during(a, kQuiet), 0u);  // submitted, waiting
  p().cancel(a, &x, false);
  EXPECT_FALSE(x.rx.busy());
  ASSERT_EQ(::write(b, "data", 4), 4);
  EXPECT_TRUE(w.until(a, POLLIN) & POLLIN);  // by the readiness watch
  EXPECT_TRUE(p().polling(a));
  EXPECT_EQ(std::string(buf, sizeof buf), std::string(sizeof buf, '.'));
  char got[8];
  EXPECT_EQ(::read(a, got, sizeof got), 4);  // the bytes are still in the socket

  // A new receive replaces the readiness watch.
  p().recv(a, &x, buf, sizeof buf, true);
  w.poll_once(0);
  EXPECT_FALSE(p().polling(a));
  w.clear(a);
  ASSERT_EQ(::write(b, "more", 4), 4);
  EXPECT_EQ(until_done(w, x.rx), 4);
  EXPECT_EQ(std::string(buf, 4), "more");
  EXPECT_EQ(w.seen(a), kTransferDone);
  p().forget(a);
}

TEST_P(IoUringCompletionTest, CancellingAReceiveLosesNoData) {
  // Whether the cancel wins or the receive finished first, every byte is accounted for.
  for (int round = 0; round < 50; ++round) {
    int a, b;
    fds_.socket_pair(&a, &b);
    Transfers x;
    char buf[16];
    p().recv(a, &x, buf, sizeof buf, round % 2 == 0);
    PollEvent out[8];
    ASSERT_GE(wait_once(p(), 0, out, 8), 0);  // submitted
    ASSERT_EQ(::write(b, "abc", 3), 3);
    p().cancel(a, &x, false);
    std::string got;
    if (!x.rx.busy()) {  // cancelled: the bytes are still in the socket
      char rest[8];
      ssize_t n = ::read(a, rest, sizeof rest);
      if (n > 0) got.assign(rest, static_cast<std::size_t>(n));
    } else {  // it had finished
      Watcher w(p());
      ASSERT_EQ(until_done(w, x.rx), 3);
      got.assign(buf, 3);
    }
    EXPECT_EQ(got, "abc") << "round " << round;
    p().forget(a);
    fds_.close(a);
    fds_.close(b);
  }
}

TEST_P(IoUringCompletionTest, ForgetCancelsWhatIsInFlightAndAReusedNumberGetsNothingStale) {
  int a, b;
  fds_.socket_pair(&a, &b);
  Transfers x;
  char buf[16];
  std::memset(buf, '.', sizeof buf);
  p().recv(a, &x, buf, sizeof buf, true);
  PollEvent out[8];
  ASSERT_GE(wait_once(p(), 0, out, 8), 0);  // in flight
  p().forget(a);
  EXPECT_FALSE(x.rx.busy());
  fds_.close(a);
  int peer = fds_.reuse_number(a);  // a is now another socket
  // Bytes for the old socket (which lives until the cancelled request lets go of it) are never
  // received into the old buffer.
  ::send(b, "late", 4, MSG_NOSIGNAL);
  Transfers y;
  char buf2[16];
  p().recv(a, &y, buf2, sizeof buf2, true);
  Watcher w(p());
  EXPECT_EQ(w.during(a, kQuiet), 0u);
  ASSERT_EQ(::write(peer, "new", 3), 3);
  EXPECT_EQ(until_done(w, y.rx), 3);
  EXPECT_EQ(std::string(buf2, 3), "new");
  EXPECT_EQ(std::string(buf, sizeof buf), std::string(sizeof buf, '.'));
  EXPECT_FALSE(x.rx.busy());
  p().forget(a);
}

INSTANTIATE_TEST_SUITE_P(DeferTaskrun, IoUringCompletionTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "DeferTaskrun" : "PlainFlags");
                         });

// Multishot receive (completion_io.h): one receive armed per fd, into the poller's buffers.
class IoUringMultishotTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { make(512, 2048); }
  void make(unsigned buffers, unsigned size) {
    if (!io_uring_works()) GTEST_SKIP() << "io_uring unavailable here";
    IoUringOptions options;
    options.defer_taskrun = GetParam();
    options.rx_buffers = buffers;
    options.rx_buffer_size = size;
    p_.reset();
    p_ = IoUringPoller::create(kMaxFds, options);
    ASSERT_NE(p_, nullptr) << strerror(errno);
    if (p_->completion_io() == nullptr) GTEST_SKIP() << "no completion mode before Linux 6.0";
    // Provided-buffer rings (5.19) are older than completion mode's sync cancel (6.0).
    ASSERT_TRUE(p_->multishot_available());
    ASSERT_TRUE(p_->recv_multishot());
    ASSERT_EQ(p_->rx_buffers_free(), buffers);
  }
  void TearDown() override {
    fds_.~Fds();
    new (&fds_) Fds();
  }
  IoUringPoller& p() { return *p_; }
  // Takes everything queued for fd (into pieces of `piece` bytes); the last take's result in *last.
  std::string take_all(int fd, std::size_t piece, std::int32_t* last) {
    std::string got;
    std::vector<char> a(piece), b(piece);
    for (;;) {
      iovec v[2] = {{a.data(), piece}, {b.data(), piece}};
      std::int32_t r = p().take_recv(fd, v, 2);
      *last = r;
      if (r <= 0) return got;
      std::size_t n = static_cast<std::size_t>(r);
      got.append(a.data(), n < piece ? n : piece);
      if (n > piece) got.append(b.data(), n - piece);
    }
  }
  // Waits (bounded) until fd has something queued.
  bool until_queued(Watcher& w, int fd) {
    Clock::time_point start = Clock::now();
    while (!p().recv_queued(fd)) {
      if (since_ns(start) > kPatience) return false;
      w.poll_once(kPatience - since_ns(start));
    }
    return true;
  }

  std::unique_ptr<IoUringPoller> p_;
  Fds fds_;
};

TEST_P(IoUringMultishotTest, OneArmedReceiveQueuesEveryArrivalAndTakeCopiesIt) {
  int a, b;
  fds_.socket_pair(&a, &b);
  p().arm_recv(a);
  p().interest(a, POLLIN | POLLRDHUP);  // the receive stands in for a readiness watch
  Watcher w(p());
  EXPECT_EQ(w.during(a, kQuiet), 0u);
  EXPECT_FALSE(p().polling(a));
  EXPECT_TRUE(p().recv_armed(a));
  EXPECT_FALSE(p().recv_queued(a));
  iovec none[1] = {{nullptr, 0}};
  EXPECT_EQ(p().take_recv(a, none, 1), -EAGAIN);
  for (int round = 0; round < 3; ++round) {  // no new SQE needed between messages
    std::string msg = "hello " + std::to_string(round);
    ASSERT_EQ(::write(b, msg.data(), msg.size()), static_cast<ssize_t>(msg.size()));
    w.clear(a);
    EXPECT_EQ(w.until(a, kTransferDone), kTransferDone);  // once, as a completion (no POLLIN)
    EXPECT_TRUE(p().recv_queued(a));
    EXPECT_LT(p().rx_buffers_free(), 512u);
    // Across a ring's two pieces of free space: 3 bytes, then the rest.
    char x[3], y[16];
    iovec v[2] = {{x, sizeof x}, {y, sizeof y}};
    ASSERT_EQ(p().take_recv(a, v, 2), static_cast<std::int32_t>(msg.size()));
    EXPECT_EQ(std::string(x, 3) + std::string(y, msg.size() - 3), msg);
    EXPECT_FALSE(p().recv_queued(a));
    EXPECT_EQ(p().rx_buffers_free(), 512u);  // given back as soon as it was copied
    EXPECT_TRUE(p().recv_armed(a));
  }
  // A take smaller than what is queued leaves the rest, in order.
  ASSERT_EQ(::write(b, "abcdefgh", 8), 8);
  ASSERT_TRUE(until_queued(w, a));
  char c[5];
  iovec v{c, sizeof c};
  ASSERT_EQ(p().take_recv(a, &v, 1), 5);
  EXPECT_EQ(std::string(c, 5), "abcde");
  std::int32_t last = 0;
  EXPECT_EQ(take_all(a, 64, &last), "fgh");
  EXPECT_EQ(last, -EAGAIN);
  p().forget(a);
}

TEST_P(IoUringMultishotTest, EndOfInputAndErrorsComeAfterTheData) {
  int a, b;
  fds_.socket_pair(&a, &b);
  p().arm_recv(a);
  Watcher w(p());
  ASSERT_EQ(::write(b, "last words", 10), 10);
  ASSERT_EQ(::shutdown(b, SHUT_WR), 0);
  EXPECT_EQ(w.until(a, kTransferDone), kTransferDone);
  std::int32_t last = 1;
  EXPECT_EQ(take_all(a, 64, &last), "last words");
  EXPECT_EQ(last, 0);  // the end of input, after the data
  EXPECT_TRUE(p().recv_queued(a));  // and it stays
  p().arm_recv(a);  // nothing to arm after the end
  EXPECT_FALSE(p().recv_armed(a));
  p().forget(a);
  EXPECT_FALSE(p().recv_queued(a));

  // TCP: the peer closes with unread data, which resets the connection.
  int c, s;
  fds_.tcp_pair(&c, &s);
  p().arm_recv(s);
  ASSERT_EQ(::write(s, "unread", 6), 6);  // c never reads it
  fds_.close(c);
  EXPECT_EQ(w.until(s, kTransferDone), kTransferDone);
  EXPECT_EQ(take_all(s, 64, &last), "");
  EXPECT_EQ(last, -ECONNRESET);
  p().forget(s);
}

TEST_P(IoUringMultishotTest, ReceiveOnAPipeSaysEnotsock) {
  int r, wr;
  fds_.pipe(&r, &wr);
  p().arm_recv(r);
  Watcher w(p());
  EXPECT_EQ(w.until(r, kTransferDone), kTransferDone);
  std::int32_t last = 0;
  EXPECT_EQ(take_all(r, 8, &last), "");
  EXPECT_EQ(last, -ENOTSOCK);
  p().forget(r);
}

TEST_P(IoUringMultishotTest, AFdThatIsNotReadStopsReceivingAndLosesNothing) {
  int a, b;
  fds_.socket_pair(&a, &b);
  int big = 1 << 20;
  ASSERT_EQ(::setsockopt(b, SOL_SOCKET, SO_SNDBUF, &big, sizeof big), 0);
  p().arm_recv(a);
  Watcher w(p());
  w.poll_once(0);  // armed
  // More than a few buffers' worth arrives and nobody takes it: the receive stops.
  std::string sent;
  auto send_chunks = [&](int count) {
    for (int i = 0; i < count; ++i) {
      std::string chunk(1000, static_cast<char>('a' + (sent.size() / 1000) % 26));
      chunk[0] = static_cast<char>('0' + i % 10);
      ASSERT_EQ(::write(b, chunk.data(), chunk.size()), 1000);
      sent += chunk;
    }
  };
  send_chunks(12);
  ASSERT_TRUE(until_queued(w, a));
  EXPECT_EQ(w.during(a, kQuiet) & kTransferDone, kTransferDone);
  EXPECT_FALSE(p().recv_armed(a));
  unsigned held = 512u - p().rx_buffers_free();
  // What arrives now stays in the socket (the OS's own buffer and TCP's window hold it).
  send_chunks(30);
  EXPECT_EQ(w.during(a, kQuiet), kTransferDone);
  EXPECT_EQ(512u - p().rx_buffers_free(), held);
  int unread = 0;
  ASSERT_EQ(::ioctl(a, FIONREAD, &unread), 0);
  EXPECT_GE(unread, 30000);
  std::string got;
  Clock::time_point start = Clock::now();
  while (got.size() < sent.size() && since_ns(start) < kPatience) {
    std::int32_t last = 0;
    got += take_all(a, 700, &last);
    ASSERT_EQ(last, -EAGAIN);
    p().arm_recv(a);  // what a socket does when it finds nothing queued
    w.poll_once(kMs);
  }
  EXPECT_TRUE(got == sent) << got.size() << " of " << sent.size() << " bytes";
  EXPECT_EQ(p().rx_buffers_free(), 512u);
  p().forget(a);
}

TEST_P(IoUringMultishotTest, AReceiveThatRanOutOfBuffersIsArmedAgainWhenTheyComeBack) {
  make(4, 64);
  int a, b, c, d;
  fds_.socket_pair(&a, &b);
  fds_.socket_pair(&c, &d);
  p().arm_recv(a);
  p().arm_recv(c);
  Watcher w(p());
  w.poll_once(0);  // both armed
  // a takes every buffer (and is stopped: it is not read).
  std::string hog;
  for (int i = 0; i < 6; ++i) {
    std::string chunk(64, static_cast<char>('A' + i));
    ASSERT_EQ(::write(b, chunk.data(), 64), 64);
    hog += chunk;
    w.poll_once(kMs);
  }
  ASSERT_TRUE(until_queued(w, a));
  Clock::time_point start = Clock::now();
  while (p().rx_buffers_free() > 0 && since_ns(start) < kPatience) w.poll_once(kMs);
  ASSERT_EQ(p().rx_buffers_free(), 0u);
  // c's data finds no buffer: its receive ends with ENOBUFS and waits for buffers.
  ASSERT_EQ(::write(d, "starved", 7), 7);
  EXPECT_EQ(w.during(c, kQuiet), 0u);
  EXPECT_FALSE(p().recv_queued(c));
  EXPECT_EQ(p().nobufs_rearms(), 0u);
  // a is read: its buffers come back, and c's receive is armed again and gets its bytes.
  std::string got;
  std::int32_t last = 0;
  got += take_all(a, 1000, &last);
  EXPECT_GT(p().rx_buffers_free(), 0u);
  ASSERT_TRUE(until_queued(w, c));
  EXPECT_GE(p().nobufs_rearms(), 1u);
  EXPECT_EQ(take_all(c, 64, &last), "starved");
  // and a gets the rest of its bytes, in order.
  start = Clock::now();
  while (got.size() < hog.size() && since_ns(start) < kPatience) {
    got += take_all(a, 1000, &last);
    p().arm_recv(a);
    w.poll_once(kMs);
  }
  EXPECT_EQ(got, hog);
  p().forget(a);
  p().forget(c);
}

TEST_P(IoUringMultishotTest, ForgetGivesQueuedBuffersBackAndAReusedNumberGetsNothingStale) {
  int a, b;
  fds_.socket_pair(&a, &b);
  p().arm_recv(a);
  Watcher w(p());
  ASSERT_EQ(::write(b, "old data", 8), 8);
  ASSERT_TRUE(until_queued(w, a));
  EXPECT_EQ(p().rx_buffers_free(), 511u);
  p().forget(a);
  EXPECT_EQ(p().rx_buffers_free(), 512u);
  EXPECT_FALSE(p().recv_queued(a));
  fds_.close(a);
  int peer = fds_.reuse_number(a);  // a is now another socket
  ::send(b, "late", 4, MSG_NOSIGNAL);  // for the old socket, until its receive is cancelled
  p().arm_recv(a);
  w.clear(a);
  EXPECT_EQ(w.during(a, kQuiet) & (POLLIN | kTransferDone), 0u);
  EXPECT_FALSE(p().recv_queued(a));
  ASSERT_EQ(::write(peer, "new", 3), 3);
  ASSERT_TRUE(until_queued(w, a));
  std::int32_t last = 0;
  EXPECT_EQ(take_all(a, 64, &last), "new");
  p().forget(a);
  w.poll_once(0);
  EXPECT_EQ(p().rx_buffers_free(), 512u);
}

TEST_P(IoUringMultishotTest, AForgottenSocketIsReleasedFromTheFileTableAndClosesForReal) {
  int a, b;
  fds_.socket_pair(&a, &b);
  p().arm_recv(a);
  Transfers x;
  iovec iov{const_cast<char*>("bye"), 3};
  p().send(a, &x, &iov, 1);
  Watcher w(p());
  Clock::time_point start = Clock::now();
  while (!x.tx.done() && since_ns(start) < kPatience) w.poll_once(kMs);  // (a send is not reported)
  ASSERT_TRUE(x.tx.done());
  EXPECT_EQ(x.tx.take(), 3);
  EXPECT_EQ(p().registered(a), p().fixed_files());  // named through the registered table
  p().detach(a, &x);
  p().forget(a);
  EXPECT_FALSE(p().registered(a));
  fds_.close(a);
  char buf[8];
  EXPECT_EQ(::read(b, buf, sizeof buf), 3);
  // Once the receive's cancel has gone down with the next waits, nothing holds the file any
  // more: the peer sees the end of the stream.
  pollfd pf{b, POLLIN, 0};
  start = Clock::now();
  while (::poll(&pf, 1, 0) == 0 && since_ns(start) < kPatience) w.poll_once(kMs);
  EXPECT_EQ(::read(b, buf, sizeof buf), 0);
}

INSTANTIATE_TEST_SUITE_P(DeferTaskrun, IoUringMultishotTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "DeferTaskrun" : "PlainFlags");
                         });

// In a child process: forbid io_uring_setup with a seccomp filter, then ask for io_uring.
// Exit codes: 0 fine, 77 seccomp unavailable, others a failed check.
constexpr int kChildSkip = 77;

int fallback_child(std::uint32_t arch) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return kChildSkip;
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return kChildSkip;

  std::unique_ptr<Poller> p = Poller::create(PollerKind::kIoUring, 64);
  if (!p) return 2;
  if (p->kind() != PollerKind::kEpoll) return 3;
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return 4;
  p->interest(fds[0], POLLIN);
  if (::write(fds[1], "x", 1) != 1) return 5;
  PollEvent out[4];
  int n = wait_once(*p, kPatience, out, 4);
  if (n != 1 || out[0].fd != fds[0] || (out[0].events & POLLIN) == 0) return 6;
  return 0;
}

TEST(IoUringFallbackTest, FallsBackToEpollAndLogsOneLineWhenIoUringIsRefused) {
#if defined(__x86_64__)
  constexpr std::uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr std::uint32_t kArch = AUDIT_ARCH_AARCH64;
#else
  GTEST_SKIP() << "no seccomp architecture constant for this target";
  constexpr std::uint32_t kArch = 0;
#endif
  int err[2];
  ASSERT_EQ(::pipe2(err, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0) << strerror(errno);
  if (pid == 0) {
    ::dup2(err[1], STDERR_FILENO);
    ::_exit(fallback_child(kArch));
  }
  ::close(err[1]);
  std::string log;
  char buf[512];
  for (ssize_t got; (got = ::read(err[0], buf, sizeof(buf))) != 0;) {
    if (got < 0 && errno == EINTR) continue;
    ASSERT_GT(got, 0) << strerror(errno);
    log.append(buf, static_cast<std::size_t>(got));
  }
  ::close(err[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << log;
  if (WEXITSTATUS(status) == kChildSkip) GTEST_SKIP() << "seccomp filters unavailable here";
  EXPECT_EQ(WEXITSTATUS(status), 0) << log;
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
  EXPECT_NE(log.find("io_uring unavailable"), std::string::npos) << log;
  EXPECT_NE(log.find("EPERM"), std::string::npos) << log;
  EXPECT_NE(log.find("epoll"), std::string::npos) << log;
}

}  // namespace
}  // namespace mnv
