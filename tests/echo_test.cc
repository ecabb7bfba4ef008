// Integration tests of the kernel, sockets and services through the echo service, on real
// loopback TCP, run once per poller (io_uring, epoll, poll).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "tests/echo_fixture.h"

namespace mnv::testing {
namespace {

class EchoTest : public ::testing::TestWithParam<Backend> {};

std::string reply(std::size_t n, const std::string& line) { return "Line " + std::to_string(n) + ": " + line; }

TEST_P(EchoTest, UsesTheRequestedPoller) {
  ServerThread s(GetParam(), echo_config());
  ASSERT_NE(s.port(), 0);
  EXPECT_EQ(s.kind(), GetParam().kind);
  // Completion mode where io_uring offers it (Linux 6.0+) and it was not turned off.
  if (GetParam().kind != PollerKind::kIoUring || !GetParam().completion_io) {
    EXPECT_FALSE(s.completion_io());
  }
  // The multishot receive wherever completion mode is on (its provided-buffer ring is older
  // than completion mode's synchronous cancellation), unless it was turned off.
  EXPECT_EQ(s.recv_multishot(), s.completion_io() && GetParam().recv_multishot);
}

TEST_P(EchoTest, ManyLinesAcrossManyConcurrentConnections) {
  ServerThread s(GetParam(), echo_config());
  constexpr int kConns = 64, kRounds = 50;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kConns; ++i) {
    clients.push_back(std::make_unique<Client>(s.port()));
    ASSERT_TRUE(clients.back()->connected());
  }
  for (int r = 0; r < kRounds; ++r) {
    for (int i = 0; i < kConns; ++i) ASSERT_TRUE(clients[i]->send("conn " + std::to_string(i) + " round " + std::to_string(r) + "\n"));
    for (int i = 0; i < kConns; ++i) {
      ASSERT_EQ(clients[i]->recv_line(), reply(r, "conn " + std::to_string(i) + " round " + std::to_string(r) + "\n"));
    }
  }
}

TEST_P(EchoTest, PipelinedLinesAreAllAnswered) {
  ServerThread s(GetParam(), echo_config());
  Client c(s.port());
  std::string in, expect;
  for (int i = 0; i < 2000; ++i) {
    std::string line = "pipelined " + std::to_string(i) + "\n";
    in += line;
    expect += reply(i, line);
  }
  ASSERT_TRUE(c.send(in));
  EXPECT_EQ(c.recv_n(expect.size()), expect);
}

TEST_P(EchoTest, LinesLongerThanTheRingAreAnsweredWhole) {
  ServerThread s(GetParam(), echo_config());
  Client c(s.port());
  std::string line(8190, 'x');
  line += "\n";  // 8191 bytes: the longest line answered whole
  ASSERT_TRUE(c.send(line));
  std::string expect = reply(0, line);
  EXPECT_EQ(c.recv_n(expect.size()), expect);
  // A longer line is answered in 8191-byte pieces, as with the seed's buffer.
  std::string longer(10000, 'y');
  longer += "\n";
  ASSERT_TRUE(c.send(longer));
  std::string e1 = reply(1, longer.substr(0, 8191));
  std::string e2 = reply(2, longer.substr(8191));
  EXPECT_EQ(c.recv_n(e1.size() + e2.size()), e1 + e2);
}

TEST_P(EchoTest, LinesArrivingInPiecesAreAnsweredWhole) {
  ServerThread s(GetParam(), echo_config());
  Client c(s.port());
  // A whole line and the start of the next in one segment, the rest of it later: the first is
  // answered from the receive ring, the second once its newline has arrived.
  ASSERT_TRUE(c.send("whole\npart"));
  EXPECT_EQ(c.recv_line(), reply(0, "whole\n"));
  ::usleep(20'000);
  ASSERT_TRUE(c.send("ial\nnext\n"));
  EXPECT_EQ(c.recv_line(), reply(1, "partial\n"));
  EXPECT_EQ(c.recv_line(), reply(2, "next\n"));
}

TEST_P(EchoTest, HalfCloseGetsAllRepliesThenEof) {
  ServerThread s(GetParam(), echo_config());
  Client c(s.port());
  ASSERT_TRUE(c.send("a\nb\nno newline at the end"));
  ::shutdown(c.fd(), SHUT_WR);
  EXPECT_EQ(c.recv_all(), reply(0, "a\n") + reply(1, "b\n") + reply(2, "no newline at the end"));
}

// Data and FIN arriving together at a connection already waiting for input: one readiness edge
// covers both, and a short read may consume the FIN too, so EOF must still be noticed.
TEST_P(EchoTest, DataAndFinInOneEdgeStillEndTheConnection) {
  ServerThread s(GetParam(), echo_config());
  for (int i = 0; i < 200; ++i) {
    Client c(s.port());
    ASSERT_TRUE(c.send("first\n"));
    ASSERT_EQ(c.recv_line(), reply(0, "first\n"));  // the server now waits for input
    ASSERT_TRUE(c.send("a\nlast"));
    ::shutdown(c.fd(), SHUT_WR);
    ASSERT_EQ(c.recv_all(), reply(1, "a\n") + reply(2, "last")) << "iteration " << i;
  }
}

TEST_P(EchoTest, PeerResetMidWriteLeavesOthersServed) {
  ServerThread s(GetParam(), echo_config());
  Client other(s.port());
  ASSERT_TRUE(other.send("before\n"));
  ASSERT_EQ(other.recv_line(), reply(0, "before\n"));
  for (int k = 0; k < 5; ++k) {
    Client victim(s.port());
    // Lots of input, never read: the server's replies back up, then the peer resets.
    std::string burst;
    for (int i = 0; i < 20000; ++i) burst += "0123456789012345678901234567890123456789\n";
    int nb = 1;
    ::ioctl(victim.fd(), FIONBIO, &nb);
    std::size_t off = 0;
    for (int tries = 0; tries < 100 && off < burst.size(); ++tries) {
      ssize_t n = ::send(victim.fd(), burst.data() + off, burst.size() - off, MSG_NOSIGNAL);
      if (n > 0) off += static_cast<std::size_t>(n);
      pollfd p{victim.fd(), POLLOUT, 0};
      ::poll(&p, 1, 10);
    }
    linger lg{1, 0};
    ::setsockopt(victim.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    victim.close();  // RST
  }
  ASSERT_TRUE(other.send("after\n"));
  EXPECT_EQ(other.recv_line(), reply(1, "after\n"));
  Client fresh(s.port());
  ASSERT_TRUE(fresh.send("fresh\n"));
  EXPECT_EQ(fresh.recv_line(), reply(0, "fresh\n"));
}

TEST_P(EchoTest, FullPoolRefusesNewConnectionsCleanly) {
  ServerThread s(GetParam(), echo_config(/*pool=*/2));
  Client a(s.port()), b(s.port());
  ASSERT_TRUE(a.send("a\n"));
  ASSERT_TRUE(b.send("b\n"));
  ASSERT_EQ(a.recv_line(), reply(0, "a\n"));
  ASSERT_EQ(b.recv_line(), reply(0, "b\n"));
  Client c(s.port());
  EXPECT_TRUE(c.sees_eof());  // refused: closed by the server
  ASSERT_TRUE(a.send("still\n"));
  EXPECT_EQ(a.recv_line(), reply(1, "still\n"));
  b.close();
  // A slot frees up once b's process is reclaimed; a new connection is then served.
  for (int tries = 0; tries < 200; ++tries) {
    Client d(s.port());
    if (d.send("d\n") && d.recv_line() == reply(0, "d\n")) {
      SUCCEED();
      return;
    }
  }
  ADD_FAILURE() << "no connection was served after a slot was freed";
}

INSTANTIATE_TEST_SUITE_P(Pollers, EchoTest, all_backends(), backend_name);

}  // namespace
}  // namespace mnv::testing
