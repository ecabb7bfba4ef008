// Unit tests for static output: GatherList's layout of ring bytes and caller-owned pieces (every
// prefix consumed, the ring wrapped), and Socket::add_static() on a real socket pair with a small
// send buffer, where sends stop part-way and resume (readiness: writev; no kernel).
#include "net/gather_list.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "net/io.h"
#include "net/socket.h"
#include "runtime/test_process.h"

namespace mnv {
namespace {

std::string laid_out(const GatherList& g, const Vectoring& ring) {
  iovec v[GatherList::kMaxIov];
  int k = g.gather(ring, v);
  std::string out;
  for (int i = 0; i < k; ++i) {
    EXPECT_GT(v[i].iov_len, 0u) << i;  // (no empty pieces for writev / sendmsg)
    out.append(static_cast<const char*>(v[i].iov_base), v[i].iov_len);
  }
  return out;
}

// Ring bytes and pieces in the order they were added, the ring starting at `head` (so that it
// wraps for head > 8); after consume(n), the rest.
void layout_checks(std::uint32_t head, bool* ok) {
  static const char kPieceA[] = "XYZ";
  static const char kPieceB[] = "12345";
  const std::string all = std::string("ab") + kPieceA + "cd" + kPieceB + "efg" + kPieceA;
  for (std::size_t n = 0; n <= all.size(); ++n) {
    Vectoring ring(16);
    ASSERT_TRUE(ring.ensure());
    char skip[16] = {};
    ring.write(skip, head);
    ring.consume(head);
    GatherList g;
    ring.write("ab", 2);
    g.add(kPieceA, 3, ring.size());
    ring.write("cd", 2);
    g.add(kPieceB, 5, ring.size());
    ring.write("efg", 3);
    g.add(kPieceA, 3, ring.size());  // a piece last, nothing after it
    EXPECT_EQ(g.piece_bytes(), 11u);
    ASSERT_EQ(laid_out(g, ring), all) << head;
    g.consume(ring, n);
    EXPECT_EQ(laid_out(g, ring), all.substr(n)) << head << " / " << n;
    EXPECT_EQ(g.empty(), n == all.size()) << n;  // (the last piece ends with the last byte)
    // Bytes written after a partial consume still go after the pieces.
    ring.write("h", 1);
    EXPECT_EQ(laid_out(g, ring), all.substr(n) + "h") << head << " / " << n;
  }
  *ok = true;
}

Thread gather_checks(bool* ok) {
  bool a = false, b = false;
  layout_checks(0, &a);
  layout_checks(12, &b);  // the ring's bytes wrap around its end
  // A full list takes no more pieces; pieces may come back to back.
  GatherList g;
  Vectoring ring(16);
  for (int i = 0; i < GatherList::kMaxPieces; ++i) g.add("p", 1, 0);
  EXPECT_TRUE(g.full());
  EXPECT_EQ(laid_out(g, ring), std::string(GatherList::kMaxPieces, 'p'));
  *ok = a && b;
  co_return;
}

TEST(GatherListTest, RingBytesAndPiecesGoOutInOrderFromAnyPrefix) {
  TestProcess p;
  bool ok = false;
  p->start(gather_checks, &ok);
  p->dispatch();
  EXPECT_TRUE(ok);
  EXPECT_EQ(p.heap->allocation_count(), 1u);  // (the rings freed)
}

// 64 KiB of pattern, so a byte out of place shows.
std::string pattern(std::size_t n, int salt) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + salt) % 26);
  return s;
}

struct SendCase {
  std::string expected;
  int waits = 0;  // drains that stopped part-way (EAGAIN)
  bool ok = false;
};

// On one end of a socket pair with the smallest send buffer: ring bytes and static pieces
// interleaved, drained while the other end reads; then what add_static() refuses.
Thread socket_checks(int fd, int peer, SendCase* c) {
  static const std::string kBig1 = pattern(65536, 1);
  static const std::string kBig2 = pattern(40000, 5);
  static const char kSmall[] = "<static>";
  Socket s(fd);
  for (int round = 0; round < 3; ++round) {
    std::string head = "head " + std::to_string(round) + "\n";
    EXPECT_TRUE(try_write(s, head.data(), head.size()));
    EXPECT_TRUE(s.add_static(kBig1.data(), kBig1.size()));
    EXPECT_TRUE(try_write(s, "|mid|", 5));
    EXPECT_TRUE(s.add_static(kSmall, sizeof kSmall - 1));
    EXPECT_TRUE(s.add_static(kBig2.data(), kBig2.size()));  // two pieces back to back
    c->expected += head + kBig1 + "|mid|" + kSmall + kBig2;
  }
  EXPECT_TRUE(s.has_output());
  std::string got;
  char buf[4096];
  for (int turns = 0; turns < 100000; ++turns) {
    Block b;
    Socket::Io io = s.drain(b);
    if (io == Socket::Io::kAgain) {
      EXPECT_EQ(b.fd, fd);
      ++c->waits;
    } else {
      EXPECT_EQ(io, Socket::Io::kProgress);
      if (!s.has_output()) break;
    }
    for (;;) {  // the reader takes what is there
      ssize_t n = ::recv(peer, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
  }
  EXPECT_FALSE(s.has_output());
  for (;;) {
    ssize_t n = ::recv(peer, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_EQ(got.size(), c->expected.size());
  EXPECT_TRUE(got == c->expected) << "bytes out of order";
  // Refused: n == 0; a full list; ended output; a socket peer (no fd of its own).
  EXPECT_FALSE(s.add_static(kSmall, 0));
  for (int i = 0; i < GatherList::kMaxPieces; ++i) EXPECT_TRUE(s.add_static(kSmall, 1));
  EXPECT_FALSE(s.add_static(kSmall, 1));
  s.hup();
  EXPECT_FALSE(s.add_static(kSmall, 1));
  Socket a, b;
  Socket::pipe(a, b);
  EXPECT_FALSE(a.add_static(kSmall, 1));
  c->ok = true;
  co_return;
}

TEST(SocketStaticOutputTest, InterleavedWithRingBytesAndResumedAfterPartialSends) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  int small = 1;  // (the kernel rounds it up to its minimum)
  ASSERT_EQ(::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  ASSERT_EQ(::setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
  TestProcess p(64);
  SendCase c;
  p->start(socket_checks, sv[0], sv[1], &c);
  p->dispatch();
  ::close(sv[1]);
  EXPECT_TRUE(c.ok);
  EXPECT_GT(c.waits, 10) << "the sends never stopped part-way";
  EXPECT_EQ(p.heap->allocation_count(), 1u);  // the rings and the list freed with the socket
}

}  // namespace
}  // namespace mnv
