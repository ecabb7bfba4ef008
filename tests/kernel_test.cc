// Integration tests of the virtual kernel with micro-thread clients on real loopback sockets,
// once per poller: timers (sleep, op deadlines, cancellation), non-blocking connect with a
// deadline against a listener whose accept queue is full, EOF and error paths, process reclaim.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "net/io.h"
#include "net/service.h"
#include "runtime/kernel.h"
#include "runtime/poller_uring.h"
#include "runtime/raise.h"
#include "tests/echo_fixture.h"

namespace mnv::testing {
namespace {

class KernelTest : public ::testing::TestWithParam<Backend> {
 protected:
  std::unique_ptr<Kernel> make_kernel() {
    KernelConfig kc;
    kc.poller = GetParam().kind;
    kc.completion_io = GetParam().completion_io;
  kc.recv_multishot = GetParam().recv_multishot;
    kc.recv_multishot = GetParam().recv_multishot;
    kc.max_fds = 4096;
    kc.max_processes = 256;
    kc.exit_when_idle = true;
    return Kernel::create(kc);
  }
  HeapPool pool_{16, 64};
};

Thread sleeper(std::int64_t ns, std::int64_t* slept) {
  std::int64_t start = monotonic_ns();
  co_await sleep_for(ns);
  *slept = monotonic_ns() - start;
}

TEST_P(KernelTest, SleepWakesAfterItsDeadlineAndNotBefore) {
  auto k = make_kernel();
  std::int64_t a = 0, b = 0;
  k->start(pool_, sleeper, std::int64_t{30'000'000}, &a);
  k->start(pool_, sleeper, std::int64_t{5'000'000}, &b);
  EXPECT_EQ(k->run(), 0);
  EXPECT_GE(a, 30'000'000);
  EXPECT_GE(b, 5'000'000);
  EXPECT_LT(b, a);
  EXPECT_EQ(k->process_count(), 0u);
}

Finally record(Error* e) {
  *e = error();
  co_return;
}

// Connects to `port`, sets a read deadline, reads: the server never writes.
Thread reads_with_deadline(std::uint16_t port, Error* e, std::int64_t* waited) {
  co_await finally(record(e));
  Socket s;
  s.set_timeout_ns(50'000'000);
  sockaddr_storage a;
  socklen_t len;
  make_address("127.0.0.1", port, &a, &len);
  co_await connect(s, reinterpret_cast<sockaddr*>(&a), len);
  char buf[16];
  std::int64_t start = monotonic_ns();
  *waited = -1;
  co_await read(s, buf, sizeof buf);
  *waited = monotonic_ns() - start;  // not reached: the read raises ETIMEDOUT
}

// A server handler that reads and never answers.
Task<> silent(Accepted&) {
  char buf[64];
  while (co_await read(buf, sizeof buf) > 0) {
  }
}

TEST_P(KernelTest, ReadDeadlineRaisesEtimedout) {
  ServerConfig sc;
  sc.handler = silent;
  ServerThread server(GetParam(), sc);
  auto k = make_kernel();
  Error e;
  std::int64_t waited = 0;
  std::int64_t start = monotonic_ns();
  k->start(pool_, reads_with_deadline, server.port(), &e, &waited);
  k->run();
  EXPECT_EQ(e.code, ETIMEDOUT);
  EXPECT_EQ(waited, -1);
  EXPECT_GE(monotonic_ns() - start, 50'000'000);
}

// Many ops with deadlines that complete first: every timer is cancelled, none fires later.
Thread echoes_with_deadlines(std::uint16_t port, int rounds, int* done) {
  Socket s;
  s.set_timeout_ns(5'000'000'000);
  sockaddr_storage a;
  socklen_t len;
  make_address("127.0.0.1", port, &a, &len);
  co_await connect(s, reinterpret_cast<sockaddr*>(&a), len);
  char buf[64];
  for (int i = 0; i < rounds; ++i) {
    co_await write(s, "ping\n", 5);
    std::size_t n = co_await readline(s, buf, sizeof buf);
    if (n > 0) ++*done;
  }
}

TEST_P(KernelTest, CompletedOpsCancelTheirTimers) {
  ServerThread server(GetParam(), echo_config());
  auto k = make_kernel();
  int done = 0;
  for (int i = 0; i < 10; ++i) k->start(pool_, echoes_with_deadlines, server.port(), 100, &done);
  std::int64_t start = monotonic_ns();
  k->run();
  EXPECT_EQ(done, 1000);
  EXPECT_LT(monotonic_ns() - start, 4'000'000'000);  // nobody waited for a 5 s deadline
}

Thread connects_with_deadline(const sockaddr_storage* a, socklen_t len, Error* e) {
  co_await finally(record(e));
  Socket s;
  s.set_timeout_ns(100'000'000);
  co_await connect(s, reinterpret_cast<const sockaddr*>(a), len);
}

TEST_P(KernelTest, ConnectToAFullAcceptQueueTimesOut) {
  // A listener that never accepts, with a backlog of 0: once its queue is full, loopback drops
  // new SYNs, so a connect can only time out.
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage a;
  socklen_t len;
  make_address("127.0.0.1", 0, &a, &len);
  ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), len), 0);
  ASSERT_EQ(::listen(l, 0), 0);
  ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
  std::vector<int> fillers;
  for (int i = 0; i < 8; ++i) {
    int f = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ::connect(f, reinterpret_cast<sockaddr*>(&a), len);
    fillers.push_back(f);
  }
  auto k = make_kernel();
  Error e;
  k->start(pool_, connects_with_deadline, &a, len, &e);
  k->run();
  EXPECT_EQ(e.code, ETIMEDOUT);
  for (int f : fillers) ::close(f);
  ::close(l);
}

Thread connects_refused(std::uint16_t port, Error* e) {
  co_await finally(record(e));
  Socket s;
  sockaddr_storage a;
  socklen_t len;
  make_address("127.0.0.1", port, &a, &len);
  co_await connect(s, reinterpret_cast<sockaddr*>(&a), len);
}

TEST_P(KernelTest, ConnectRefusedRaisesEconnrefused) {
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage a;
  socklen_t len;
  make_address("127.0.0.1", 0, &a, &len);
  ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), len), 0);
  ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
  std::uint16_t port = ntohs(reinterpret_cast<sockaddr_in*>(&a)->sin_port);
  ::close(l);  // bound once, now nobody listens there
  auto k = make_kernel();
  Error e;
  k->start(pool_, connects_refused, port, &e);
  k->run();
  EXPECT_EQ(e.code, ECONNREFUSED);
}

Thread stops_kernel() {
  co_await sleep_for(1'000'000);
  Kernel::current()->stop();
}

Thread sleeps_long(bool* finished) {
  co_await sleep_for(60'000'000'000);
  *finished = true;
}

TEST_P(KernelTest, StopReclaimsEverythingAfterTheGracePeriod) {
  KernelConfig kc;
  kc.poller = GetParam().kind;
  kc.completion_io = GetParam().completion_io;
  kc.recv_multishot = GetParam().recv_multishot;
  kc.grace_ns = 20'000'000;
  auto k = Kernel::create(kc);
  bool finished = false;
  k->start(pool_, sleeps_long, &finished);
  k->start(pool_, stops_kernel);
  std::int64_t start = monotonic_ns();
  EXPECT_EQ(k->run(), 0);
  EXPECT_LT(monotonic_ns() - start, 5'000'000'000);
  EXPECT_FALSE(finished);
  EXPECT_EQ(k->process_count(), 0u);
  EXPECT_EQ(pool_.in_use(), 0u);
}

Thread opens_sockets(std::uint16_t port, int* opened, Error* e) {
  co_await finally(record(e));
  Socket a, b, c;
  sockaddr_storage addr;
  socklen_t len;
  make_address("127.0.0.1", port, &addr, &len);
  for (Socket* s : {&a, &b, &c}) {
    co_await connect(*s, reinterpret_cast<sockaddr*>(&addr), len);
    ++*opened;
  }
}

TEST_P(KernelTest, AProcessFdQuotaRaisesEmfile) {
  ServerThread server(GetParam(), echo_config());
  KernelConfig kc;
  kc.poller = GetParam().kind;
  kc.completion_io = GetParam().completion_io;
  kc.recv_multishot = GetParam().recv_multishot;
  kc.exit_when_idle = true;
  kc.max_fds_per_process = 2;
  auto k = Kernel::create(kc);
  int opened = 0;
  Error e;
  k->start(pool_, opens_sockets, server.port(), &opened, &e);
  k->run();
  EXPECT_EQ(opened, 2);
  EXPECT_EQ(e.code, EMFILE);
  EXPECT_EQ(k->process_count(), 0u);
}


// ---- EOF, resets, timeouts and idle connections (readv/writev or completion mode alike) ----

sockaddr_storage loopback(std::uint16_t port, socklen_t* len) {
  sockaddr_storage a;
  make_address("127.0.0.1", port, &a, len);
  return a;
}

// Answers "hi\n", ends its output (FIN) and then keeps reading until the peer's EOF.
Task<> says_hi_then_half_closes(Accepted&) {
  co_await write("hi\n", 3);
  co_await tx_close();
  char buf[64];
  while (co_await read(buf, sizeof buf) > 0) {
  }
}

Thread reads_to_eof(std::uint16_t port, std::string* got, bool* eof_seen, int* late) {
  Socket s;
  socklen_t len;
  sockaddr_storage a = loopback(port, &len);
  co_await connect(s, reinterpret_cast<sockaddr*>(&a), len);
  char buf[64];
  std::size_t n = co_await read(s, buf, sizeof buf);  // fewer than asked: the input ended
  got->assign(buf, n);
  *eof_seen = eof(s) && nodata(s);
  *late = static_cast<int>(co_await read(s, buf, sizeof buf));  // still at EOF: nothing
  co_await write(s, "bye\n", 4);  // our direction is still open
  co_await flush(s);
}

TEST_P(KernelTest, ReadStopsAtThePeersEofAndTheOtherDirectionStaysOpen) {
  ServerConfig sc;
  sc.handler = says_hi_then_half_closes;
  ServerThread server(GetParam(), sc);
  auto k = make_kernel();
  std::string got;
  bool eof_seen = false;
  int late = -1;
  k->start(pool_, reads_to_eof, server.port(), &got, &eof_seen, &late);
  k->run();
  EXPECT_EQ(got, "hi\n");
  EXPECT_TRUE(eof_seen);
  EXPECT_EQ(late, 0);
}

// Reads one line, then closes with SO_LINGER 0: the peer gets a reset.
Task<> resets_after_a_line(Accepted& conn) {
  char buf[64];
  co_await readline(buf, sizeof buf);
  linger lg{1, 0};
  ::setsockopt(conn.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

Thread reads_into_a_reset(std::uint16_t port, Error* e) {
  co_await finally(record(e));
  Socket s;
  socklen_t len;
  sockaddr_storage a = loopback(port, &len);
  co_await connect(s, reinterpret_cast<sockaddr*>(&a), len);
  co_await write(s, "line\n", 5);
  char buf[16];
  co_await read(s, buf, sizeof buf);  // raises ECONNRESET
}

TEST_P(KernelTest, AResetRaisesEconnresetInTheReader) {
  ServerConfig sc;
  sc.handler = resets_after_a_line;
  ServerThread server(GetParam(), sc);
  auto k = make_kernel();
  Error e;
  k->start(pool_, reads_into_a_reset, server.port(), &e);
  k->run();
  EXPECT_EQ(e.code, ECONNRESET);
}

// Answers each line after 150 ms.
Task<> answers_late(Accepted&) {
  char buf[64];
  for (;;) {
    std::size_t n = co_await readline(buf, sizeof buf);
    if (n == 0) break;
    co_await sleep_for(150'000'000);
    co_await write(buf, n);
  }
}

Finally record_and_lower(Error* e) {
  for (;;) {
    *e = error();
    co_await lower();
  }
}

// A read times out while its receive (completion mode) is still out; after the lower, the next
// read gets the bytes that receive brings.
Thread times_out_then_reads_again(std::uint16_t port, Error* e, std::string* got) {
  co_await finally(record_and_lower(e));
  Socket s;
  socklen_t len;
  sockaddr_storage a = loopback(port, &len);
  co_await connect(s, reinterpret_cast<sockaddr*>(&a), len);
  co_await write(s, "late\n", 5);
  s.set_timeout_ns(30'000'000);
  char buf[16];
  std::size_t n = co_await read(s, buf, 5);  // ETIMEDOUT, lowered: returns what it had (0)
  s.set_timeout_ns(0);
  n += co_await read(s, buf + n, 5 - n);
  got->assign(buf, n);
}

TEST_P(KernelTest, AReadThatTimedOutLeavesNothingBehindForTheNextRead) {
  ServerConfig sc;
  sc.handler = answers_late;
  ServerThread server(GetParam(), sc);
  auto k = make_kernel();
  Error e;
  std::string got;
  k->start(pool_, times_out_then_reads_again, server.port(), &e, &got);
  k->run();
  EXPECT_EQ(e.code, ETIMEDOUT);
  EXPECT_EQ(got, "late\n");
}

// Says, for each line, whether its send ring was still allocated when the line came in.
Task<> reports_its_send_ring(Accepted&) {
  Socket& s = default_socket();
  char buf[64];
  for (;;) {
    std::size_t n = co_await readline(buf, sizeof buf);
    if (n == 0) break;
    if (s.tx().allocated()) {
      co_await write("kept\n", 5);
    } else {
      co_await write("released\n", 9);
    }
  }
}

Finally stop_kernel(Error* e) {
  *e = error();
  Kernel::current()->stop();
  co_return;
}

Thread talks_with_pauses(std::uint16_t port, std::vector<std::string>* replies, Error* e) {
  co_await finally(stop_kernel(e));
  Socket s;
  s.set_timeout_ns(5'000'000'000);  // a connection that is not served any more fails, not hangs
  socklen_t len;
  sockaddr_storage a = loopback(port, &len);
  co_await connect(s, reinterpret_cast<sockaddr*>(&a), len);
  char buf[64];
  for (std::int64_t pause : {0, 0, 200'000'000, 0}) {
    co_await sleep_for(pause);
    co_await write(s, "?\n", 2);
    std::size_t n = co_await readline(s, buf, sizeof buf);
    replies->emplace_back(buf, n);
  }
  Kernel::current()->stop();
}

TEST_P(KernelTest, AnIdleConnectionGivesItsRingsBackAndIsStillServed) {
  KernelConfig kc;
  kc.poller = GetParam().kind;
  kc.completion_io = GetParam().completion_io;
  kc.recv_multishot = GetParam().recv_multishot;
  kc.trim_interval_ns = 10'000'000;  // idle after 10-20 ms
  kc.grace_ns = 100'000'000;
  auto k = Kernel::create(kc);
  ServerConfig sc;
  sc.handler = reports_its_send_ring;
  std::string error;
  auto server = Server::listen(*k, sc, &error);
  ASSERT_NE(server, nullptr) << error;
  std::vector<std::string> replies;
  Error e;
  k->start(pool_, talks_with_pauses, server->port(), &replies, &e);
  k->run();
  EXPECT_EQ(e.code, 0);
  // Kept while busy; given back (and the input watched by readiness) once idle, and the
  // connection is served as before.
  std::vector<std::string> expected = {"released\n", "kept\n", "released\n", "kept\n"};
  EXPECT_EQ(replies, expected);
}

// Reads 3 bytes of a 10-byte message, idles (trimmed by the kernel) until the trim pass has given
// every receive buffer of the poller back (multishot receive: the rest of the message moved into the socket's
// own ring; at most 5 s), then reads the rest and answers with it, saying whether they came back.
// It idles in 50 ms sleeps, five trim intervals each: the pass trims a process that has not run
// since the pass before.
Task<> reads_part_then_idles(Accepted&) {
  char buf[16];
  std::size_t n = co_await read(buf, 3);
  auto* uring = dynamic_cast<IoUringPoller*>(Kernel::current()->completion_io());
  auto all_back = [uring] { return uring == nullptr || !uring->recv_multishot() || uring->rx_buffers_free() == 512; };
  std::int64_t deadline = monotonic_ns() + 5'000'000'000;
  do {  // (idle at least once, in every mode: what is left in the socket must survive it)
    co_await sleep_for(50'000'000);
  } while (!all_back() && monotonic_ns() < deadline);
  n += co_await read(buf + 3, 7);
  co_await write(all_back() ? "back:" : "held:", 5);
  co_await write(buf, n);
}

Thread sends_ten_bytes(std::uint16_t port, std::string* reply, Error* e) {
  co_await finally(stop_kernel(e));
  Socket s;
  s.set_timeout_ns(5'000'000'000);
  socklen_t len;
  sockaddr_storage a = loopback(port, &len);
  co_await connect(s, reinterpret_cast<sockaddr*>(&a), len);
  co_await write(s, "0123456789", 10);
  co_await flush(s);
  char buf[32];
  std::size_t n = co_await read(s, buf, 15);
  reply->assign(buf, n);
  Kernel::current()->stop();
}

TEST_P(KernelTest, BytesLeftInALentReceiveBufferSurviveIdlingAndTheBufferGoesBack) {
  KernelConfig kc;
  kc.poller = GetParam().kind;
  kc.completion_io = GetParam().completion_io;
  kc.recv_multishot = GetParam().recv_multishot;
  kc.trim_interval_ns = 10'000'000;
  kc.grace_ns = 100'000'000;
  auto k = Kernel::create(kc);
  ServerConfig sc;
  sc.handler = reads_part_then_idles;
  std::string error;
  auto server = Server::listen(*k, sc, &error);
  ASSERT_NE(server, nullptr) << error;
  std::string reply;
  Error e;
  k->start(pool_, sends_ten_bytes, server->port(), &reply, &e);
  k->run();
  EXPECT_EQ(e.code, 0);
  EXPECT_EQ(reply, "back:0123456789");
}

// Writes 2 MB in one go, then ends. Its socket's send buffer is kept small (no autotuning), so
// the 2 MB cannot all be buffered by the OS while the peer reads nothing.
Task<> floods(Accepted& conn) {
  int small = 64 << 10;
  ::setsockopt(conn.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  static std::string data = [] {
    std::string d(2 << 20, 0);
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
    return d;
  }();
  co_await write(data.data(), data.size());
}

TEST_P(KernelTest, OutputStuckInFlightWhileTheProcessIdlesArrivesWhole) {
  ServerConfig sc;
  sc.handler = floods;
  ServerThread server(GetParam(), sc, /*trim_interval_ns=*/10'000'000);
  // The server's listener and supervisor processes are trimmed once, as soon as they idle.
  ASSERT_TRUE(server.wait_idle_trims(2));
  std::uint64_t trims = server.idle_trims();
  Client c(server.port());
  ASSERT_TRUE(c.connected());
  // The server's send is stuck on our full window: the connection's process idles and is
  // trimmed while its output is still in flight (and so is the listener, which ran to accept).
  ASSERT_TRUE(server.wait_idle_trims(trims + 2));
  std::string got = c.recv_all();
  ASSERT_EQ(got.size(), std::size_t{2} << 20);
  std::string expected(2 << 20, 0);
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  EXPECT_TRUE(got == expected);
}

// An op that waits for POLLOUT on an fd and never takes what it is woken with: the wait of a
// write whose send is still in flight on a connection that has failed (the send's completion,
// which ends it, comes from the poller). Ends when *stop is set, or gives up after kGiveUp tries.
class WaitsOutOnAFailedFd : public IoOp<WaitsOutOnAFailedFd> {
 public:
  static constexpr std::uint64_t kGiveUp = 2'000'000;
  WaitsOutOnAFailedFd(Socket& s, int fd, const bool* stop, std::uint64_t* tries)
      : IoOp(s, std::source_location::current()), fd_(fd), stop_(stop), tries_(tries) {}
  R attempt() {
    if (*stop_ || ++*tries_ >= kGiveUp) return R::kDone;
    block_.fd = fd_;
    block_.events = POLLOUT;
    return R::kWait;
  }
  void await_resume() const noexcept {}

 private:
  int fd_;
  const bool* stop_;
  std::uint64_t* tries_;
};

Thread waits_out(int fd, const bool* stop, std::uint64_t* tries) {
  Socket s;
  co_await WaitsOutOnAFailedFd(s, fd, stop, tries);
}

Thread sleeps_then_stops(bool* stop, const std::uint64_t* tries, std::uint64_t* tries_when_woken) {
  co_await sleep_for(1'000'000);
  *tries_when_woken = *tries;
  *stop = true;
}

// The waiter's fd reports POLLERR at every poll (a pipe's write end with no reader), so each of
// its waits is answered at once and its process is readied again at every flush. That must not
// keep the kernel in one endless dispatch pass: each pass runs what was ready when it began,
// then polls, and timers and other processes get their turn.
TEST_P(KernelTest, AProcessReadiedAgainAtEveryWaitDoesNotStarveTheOthers) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  ::close(fds[0]);
  auto k = make_kernel();
  bool stop = false;
  std::uint64_t tries = 0, tries_when_woken = 0;
  ASSERT_NE(k->start(pool_, waits_out, fds[1], &stop, &tries), nullptr);
  ASSERT_NE(k->start(pool_, sleeps_then_stops, &stop, &tries, &tries_when_woken), nullptr);
  k->run();
  ::close(fds[1]);
  EXPECT_TRUE(stop) << "the sleeper never woke";
  EXPECT_LT(tries_when_woken, WaitsOutOnAFailedFd::kGiveUp) << "the waiter gave up before the sleeper woke";
  EXPECT_GT(tries_when_woken, 1u);  // it was readied again and again meanwhile
}

INSTANTIATE_TEST_SUITE_P(Pollers, KernelTest, all_backends(), backend_name);

}  // namespace
}  // namespace mnv::testing
