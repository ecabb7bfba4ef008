// Integration tests of a Server's life beyond serving, on real loopback sockets, once per
// poller: graceful shutdown (Server::drain: a busy connection gets its answer, an idle one is
// closed at once, new ones are refused), the idle timeout (ServerConfig::idle_timeout_ns: silent
// and trickling clients are closed, live ones are not, 0 turns it off), and memory given back
// once load ends (the process's RSS after thousands of connections opened and closed).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "mem/page.h"
#include "net/io.h"
#include "net/service.h"
#include "runtime/kernel.h"
#include "tests/echo_fixture.h"

namespace mnv::testing {
namespace {

constexpr std::int64_t kMs = 1'000'000;

// "slow" answers "working" at once, then "done draining=D" 200 ms later (D: what
// Accepted::draining() says then); any other line is echoed. Like a protocol handler should, it
// ends after an answer given while draining.
Task<> drain_service(Accepted& conn) {
  char line[128];
  for (;;) {
    std::size_t n = co_await readline(line, sizeof line);
    if (n == 0) break;  // end of input
    std::string_view l(line, n);
    if (l == "slow\n") {
      co_await write("working\n", 8);
      co_await flush();
      co_await sleep_for(200 * kMs);
      char out[32];
      int len = std::snprintf(out, sizeof out, "done draining=%d\n", conn.draining() ? 1 : 0);
      co_await write(out, static_cast<std::size_t>(len));
    } else {
      co_await write(line, n);
    }
    if (conn.draining()) break;
  }
}

class ServerLifecycleTest : public ::testing::TestWithParam<Backend> {};

TEST_P(ServerLifecycleTest, DrainAnswersTheBusyClosesTheIdleAndRefusesNewConnections) {
  ServerConfig c = echo_config(16);
  c.handler = drain_service;
  ServerThread s(GetParam(), c);
  ASSERT_NE(s.port(), 0);
  Client idle(s.port()), busy(s.port());
  ASSERT_TRUE(idle.send("hello\n"));
  ASSERT_EQ(idle.recv_line(), "hello\n");  // served once, now waiting for input
  ASSERT_TRUE(busy.send("slow\n"));
  ASSERT_EQ(busy.recv_line(), "working\n");  // the request is in hand
  s.drain();  // (as the server skeleton does on SIGTERM: from a hook on the kernel's thread)
  // The idle connection is closed at once: long before the busy one's answer (5 s recv timeout
  // otherwise).
  EXPECT_TRUE(idle.sees_eof());
  // New connections are refused.
  Client late(s.port());
  EXPECT_FALSE(late.connected() && late.send("late\n") && late.recv_line() == "late\n");
  // The busy one gets its answer, told it was draining, then the connection ends.
  EXPECT_EQ(busy.recv_line(), "done draining=1\n");
  EXPECT_TRUE(busy.sees_eof());
  EXPECT_EQ(s.server()->refused(), 0u);
}

// A handler that never asks draining() (echo) still ends: its next read finds the input ended;
// input that had arrived before is still answered.
TEST_P(ServerLifecycleTest, DrainEndsTheInputOfHandlersThatDoNotAsk) {
  ServerThread s(GetParam(), echo_config(16));
  ASSERT_NE(s.port(), 0);
  auto clients = open_answered(s.port(), 3);
  ASSERT_EQ(clients.size(), 3u);
  s.drain();
  for (auto& cl : clients) EXPECT_TRUE(cl->sees_eof());
  Client late(s.port());
  EXPECT_FALSE(late.connected() && late.send("late\n") && late.recv_line() == "Line 0: late\n");
}

TEST_P(ServerLifecycleTest, IdleTimeoutClosesASilentConnectionAfterTheTimeoutAndNotBefore) {
  ServerConfig c = echo_config(16);
  c.idle_timeout_ns = 200 * kMs;
  ServerThread s(GetParam(), c);
  std::int64_t start = monotonic_ns();
  Client silent(s.port());
  ASSERT_TRUE(silent.connected());
  EXPECT_TRUE(silent.sees_eof());
  EXPECT_GE(monotonic_ns() - start, 200 * kMs);
}

// The timer is a deadline on the read in hand: bytes that do not finish a line do not restart
// it, so a client trickling a byte every 50 ms under a 200 ms timeout is closed.
TEST_P(ServerLifecycleTest, IdleTimeoutClosesATricklingConnection) {
  ServerConfig c = echo_config(16);
  c.idle_timeout_ns = 200 * kMs;
  ServerThread s(GetParam(), c);
  Client slow(s.port());
  ASSERT_TRUE(slow.connected());
  std::int64_t start = monotonic_ns();
  bool closed = false;
  while (!closed && monotonic_ns() - start < 5'000 * kMs) {
    if (!slow.send("x")) {
      closed = true;  // (reset: the server closed with a byte unread)
      break;
    }
    pollfd p{slow.fd(), POLLIN, 0};
    if (::poll(&p, 1, 50) == 1) {
      char b;
      closed = ::recv(slow.fd(), &b, 1, 0) <= 0;
    }
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(monotonic_ns() - start, 2'000 * kMs);
}

TEST_P(ServerLifecycleTest, IdleTimeoutKeepsAConnectionThatKeepsTalking) {
  ServerConfig c = echo_config(16);
  c.idle_timeout_ns = 200 * kMs;
  ServerThread s(GetParam(), c);
  Client live(s.port());
  std::int64_t start = monotonic_ns();
  for (int i = 0; monotonic_ns() - start < 600 * kMs; ++i) {  // three timeouts long
    std::string line = "l" + std::to_string(i) + "\n";
    ASSERT_TRUE(live.send(line));
    ASSERT_EQ(live.recv_line(), "Line " + std::to_string(i) + ": " + line);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // (the client's pace)
  }
}

TEST_P(ServerLifecycleTest, IdleTimeoutZeroIsOff) {
  EXPECT_EQ(ServerConfig{}.idle_timeout_ns, 60'000 * kMs);  // the default
  ServerConfig c = echo_config(16);
  c.idle_timeout_ns = 0;
  ServerThread s(GetParam(), c);
  Client quiet(s.port());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // (silent, longer than above)
  ASSERT_TRUE(quiet.send("still here\n"));
  EXPECT_EQ(quiet.recv_line(), "Line 0: still here\n");
}

INSTANTIATE_TEST_SUITE_P(Pollers, ServerLifecycleTest, all_backends(), backend_name);

// The process's resident set, in KiB (/proc/self/statm).
long rss_kib() {
  long size = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * static_cast<long>(kPageSize / 1024);
}

// Load that ends gives its memory back: 6,000 connections, 1,500 open at once, opened, answered
// and closed; the RSS then returns to within 10% of what it was after a first few connections
// (the one-time costs: tables first touched, the warm heaps), and the pool keeps only its warm
// set resident. (Before the warm-set limit each heap kept a page: +6 MiB here.)
TEST(ServerMemoryTest, RssReturnsAfterLoadEnds) {
  ServerThread s(Backend{PollerKind::kIoUring}, echo_config(1600));
  ASSERT_NE(s.port(), 0);
  auto wait_closed = [&] {
    std::int64_t deadline = monotonic_ns() + 10'000 * kMs;
    while (s.server()->active() != 0 && monotonic_ns() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return s.server()->active() == 0;
  };
  {
    auto warmup = open_answered(s.port(), 64, "w");
    ASSERT_EQ(warmup.size(), 64u);
  }
  ASSERT_TRUE(wait_closed());
  long before = rss_kib();
  long peak = 0;
  for (int round = 0; round < 4; ++round) {
    auto clients = open_answered(s.port(), 1500, "r" + std::to_string(round) + "-");
    ASSERT_EQ(clients.size(), 1500u);
    peak = std::max(peak, rss_kib());
    clients.clear();
    ASSERT_TRUE(wait_closed());
  }
  long after = rss_kib();
  std::printf("RSS: before %ld KiB, at the peak %ld KiB, after %ld KiB\n", before, peak, after);
#ifndef MNV_SANITIZER
  EXPECT_LE(after, before + before / 10) << "peak " << peak << " KiB";
#else
  (void)after;  // (a sanitizer's quarantine and shadow memory are in the RSS too: only the pool
                // is checked below)
#endif
  HeapPool& pool = s.server()->pool();
  std::size_t resident = 0;
  for (std::size_t i = 0; i < pool.capacity(); ++i) {
    std::vector<unsigned char> v(pool.heap_pages());
    ASSERT_EQ(::mincore(pool.at(i), pool.heap_pages() * kPageSize, v.data()), 0);
    for (unsigned char b : v) resident += b & 1;
  }
  EXPECT_LE(resident, HeapPool::kWarmHeaps);
}

}  // namespace
}  // namespace mnv::testing
