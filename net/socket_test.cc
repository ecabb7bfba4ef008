// Unit tests for vectorings and for sockets piped between micro-threads of one process
// (no fds, no kernel): blocking on full and empty rings, EOF by hup, splice, pipeline children.
#include "net/socket.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>

#include "net/io.h"
#include "net/vectoring.h"
#include "runtime/exec.h"
#include "runtime/future.h"
#include "runtime/raise.h"
#include "runtime/test_process.h"

namespace mnv {
namespace {

Thread vectoring_checks(bool* ok) {
  Vectoring v(16);
  EXPECT_TRUE(v.ensure());
  EXPECT_EQ(v.write("0123456789", 10), 10u);
  char out[16];
  EXPECT_EQ(v.read(out, 8), 8u);
  EXPECT_EQ(v.write("abcdefghij\nXYZ", 14), 14u);  // wraps around the end of the buffer
  EXPECT_EQ(v.size(), 16u);
  EXPECT_TRUE(v.full());
  iovec iov[2];
  EXPECT_EQ(v.data_iov(iov), 2);
  EXPECT_EQ(iov[0].iov_len + iov[1].iov_len, 16u);
  EXPECT_EQ(v.line_length(16), 13u);  // "89abcdefghij\n" spans the wrap
  EXPECT_EQ(v.line_length(5), 0u);
  Vectoring w(8);
  EXPECT_TRUE(w.ensure());
  EXPECT_EQ(v.move_to(w, 100), 8u);  // limited by w's space
  EXPECT_EQ(w.read(out, 8), 8u);
  EXPECT_EQ(std::string(out, 8), "89abcdef");
  v.consume(v.size());
  v.release_if_empty();
  EXPECT_FALSE(v.allocated());
  *ok = true;
  co_return;
}

Thread lent_ring_checks(bool* ok) {
  Vectoring v(16);
  EXPECT_TRUE(v.ensure());  // (its own buffer, kept aside while lent)
  const char lender[] = "first\nsecond";
  v.lend(lender, 12);
  EXPECT_TRUE(v.lent());
  EXPECT_EQ(v.size(), 12u);
  EXPECT_TRUE(v.full());  // no free space while lent
  EXPECT_EQ(v.line_length(12), 6u);
  iovec iov[2];
  EXPECT_EQ(v.data_iov(iov), 1);
  EXPECT_EQ(iov[0].iov_base, static_cast<const void*>(lender));  // read in place
  char out[16];
  EXPECT_EQ(v.read(out, 6), 6u);
  EXPECT_EQ(std::string(out, 6), "first\n");
  // Ending the loan keeps what was not read, in the ring's own buffer, with room after it.
  EXPECT_TRUE(v.end_loan());
  EXPECT_FALSE(v.lent());
  EXPECT_EQ(v.size(), 6u);
  EXPECT_EQ(v.space(), 10u);
  EXPECT_EQ(v.write("!", 1), 1u);
  EXPECT_EQ(v.read(out, 16), 7u);
  EXPECT_EQ(std::string(out, 7), "second!");
  // A ring that had no buffer gets one only if bytes are left.
  Vectoring w(16);
  w.lend(lender, 12);
  w.consume(12);
  EXPECT_TRUE(w.end_loan());
  EXPECT_FALSE(w.allocated());
  w.lend(lender, 12);  // and released while lent, it frees nothing of the lender's
  w.release_if_empty();
  EXPECT_TRUE(w.lent());
  *ok = true;
  co_return;
}

TEST(VectoringTest, ALentRingReadsInPlaceAndKeepsTheRestWhenTheLoanEnds) {
  TestProcess p;
  bool ok = false;
  p->start(lent_ring_checks, &ok);
  p->dispatch();
  EXPECT_TRUE(ok);
}

Thread pinned_ring_checks(bool* ok) {
  Vectoring v(16);
  EXPECT_TRUE(v.ensure());
  EXPECT_EQ(v.write("abcd", 4), 4u);
  v.pin();  // as while the OS receives into the free space after "abcd"
  iovec before[2];
  EXPECT_EQ(v.space_iov(before), 1);
  char out[4];
  EXPECT_EQ(v.read(out, 4), 4u);  // empty now: unpinned, the data would move back to the start
  iovec after[2];
  EXPECT_EQ(v.space_iov(after), 2);
  EXPECT_EQ(after[0].iov_base, before[0].iov_base);  // the free space did not move
  v.release_if_empty();
  EXPECT_TRUE(v.allocated());  // pinned: kept although empty
  v.commit(3);                 // what the OS received lands after the old data
  EXPECT_EQ(v.read(out, 4), 3u);
  v.unpin();
  v.release_if_empty();
  EXPECT_FALSE(v.allocated());
  *ok = true;
  co_return;
}

TEST(VectoringTest, APinnedRingStaysAllocatedAndItsFreeSpaceStaysPut) {
  TestProcess p;
  bool ok = false;
  p->start(pinned_ring_checks, &ok);
  p->dispatch();
  EXPECT_TRUE(ok);
}

Thread shortcut_checks(bool* ok) {
  Socket a;
  EXPECT_TRUE(try_write(a, "0123456789", 10));  // fits: buffered at once
  EXPECT_EQ(a.tx().size(), 10u);
  std::string big(a.tx().space() + 1, 'x');
  EXPECT_FALSE(try_write(a, big.data(), big.size()));  // does not fit: nothing written
  EXPECT_EQ(a.tx().size(), 10u);
  EXPECT_TRUE(a.rx().ensure());
  EXPECT_EQ(a.rx().write("line\nrest", 9), 9u);
  EXPECT_FALSE(try_splice(a, a, 10));  // fewer than 10 buffered: nothing moved
  EXPECT_TRUE(try_splice(a, a, 5));
  EXPECT_EQ(a.rx().size(), 4u);
  EXPECT_EQ(a.tx().size(), 15u);
  char out[16];
  EXPECT_EQ(a.tx().read(out, sizeof out), 15u);
  EXPECT_EQ(std::string(out, 15), "0123456789line\n");
  Socket broken;  // a socket in error leaves it to the op, which raises
  broken.set_error(ECONNRESET);
  EXPECT_EQ(broken.error(), ECONNRESET);
  EXPECT_FALSE(try_write(broken, "x", 1));
  EXPECT_FALSE(try_splice(a, broken, 1));
  hup(a);
  EXPECT_FALSE(try_write(a, "x", 1));
  *ok = true;
  co_return;
}

TEST(SocketTest, TryWriteAndTrySpliceAreAllOrNothing) {
  TestProcess p;
  bool ok = false;
  p->start(shortcut_checks, &ok);
  p->dispatch();
  EXPECT_TRUE(ok);
}

TEST(VectoringTest, WrapsAndExposesTwoIovecs) {
  TestProcess p;
  bool ok = false;
  p->start(vectoring_checks, &ok);
  p->dispatch();
  EXPECT_TRUE(ok);
  EXPECT_EQ(p.heap->allocation_count(), 1u);  // ring buffers freed with their vectorings
}

Thread writer(Socket* out, int lines) {
  for (int i = 0; i < lines; ++i) {
    co_await printf(*out, "line %d of a pipe between two micro-threads\n", i);
  }
  co_await flush(*out);
  hup(*out);
}

Thread reader(Socket* in, std::string* got, int* lines) {
  char buf[128];
  for (;;) {
    std::size_t n = co_await readline(*in, buf, sizeof buf);
    if (n == 0) break;
    got->append(buf, n);
    ++*lines;
  }
  EXPECT_TRUE(nodata(*in));
}

struct Pair {
  Socket a, b;
  Pair() { Socket::pipe(a, b); }
};

Thread owner_of_pair(int lines, std::string* got, int* count) {
  Pair pair;  // both sockets in this thread's frame
  co_await spawn(writer(&pair.a, lines));
  co_await spawn(reader(&pair.b, got, count));
  while (!nodata(pair.b) || !hanged(pair.a)) co_await yield();
}

TEST(SocketPipeTest, ThreadsExchangeLinesThroughRingsThatFillUp) {
  TestProcess p(64);
  std::string got;
  int count = 0;
  p->start(owner_of_pair, 1000, &got, &count);  // ~45 KB: the 4 KB rings fill many times
  EXPECT_EQ(p->dispatch(), 0u);
  EXPECT_EQ(count, 1000);
  std::string expect;
  for (int i = 0; i < 1000; ++i) expect += "line " + std::to_string(i) + " of a pipe between two micro-threads\n";
  EXPECT_EQ(got, expect);
  EXPECT_EQ(p.heap->allocation_count(), 1u);
}

Thread splicer(Socket* from, Socket* to, std::size_t* moved) {
  *moved = co_await splice(*from, *to, 1'000'000);  // to EOF
  co_await flush(*to);
  hup(*to);
}

Thread splice_chain(std::string* got, std::size_t* moved) {
  Pair first, second;  // writer -> first.a => first.b -splice-> second.a => second.b -> reader
  int lines = 0;
  co_await spawn(writer(&first.a, 500));
  co_await spawn(splicer(&first.b, &second.a, moved));
  co_await spawn(reader(&second.b, got, &lines));
  while (!nodata(second.b)) co_await yield();
}

TEST(SocketPipeTest, SpliceMovesEverythingToEof) {
  TestProcess p(64);
  std::string got;
  std::size_t moved = 0;
  p->start(splice_chain, &got, &moved);
  EXPECT_EQ(p->dispatch(), 0u);
  std::string expect;
  for (int i = 0; i < 500; ++i) expect += "line " + std::to_string(i) + " of a pipe between two micro-threads\n";
  EXPECT_EQ(got, expect);
  EXPECT_EQ(moved, expect.size());
}

// A pipeline child: upper-cases its input onto its output.
Thread upcase() {
  char buf[256];
  for (;;) {
    std::size_t n = co_await read(buf, sizeof buf);
    if (n == 0) break;
    for (std::size_t i = 0; i < n; ++i) buf[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(buf[i])));
    co_await write(buf, n);
  }
  co_await flush();
  hup();
}

Thread pipeline_parent(std::string* got) {
  Pair out;  // the parent's output goes to out.b, read by a collector
  set_default_socket(out.a);
  int lines = 0;
  co_await spawn(reader(&out.b, got, &lines));
  co_await write("before the pipeline\n", 20);
  ThreadRef child = co_await pipeline(upcase());
  EXPECT_NE(child, nullptr);
  co_await write("after the pipeline\n", 19);
  co_await flush();
  hup();
  while (!nodata(out.b)) co_await yield();
}

TEST(SocketPipeTest, PipelineChildFiltersTheParentsOutput) {
  TestProcess p(64);
  std::string got;
  p->start(pipeline_parent, &got);
  EXPECT_EQ(p->dispatch(), 0u);
  EXPECT_EQ(got, "before the pipeline\nAFTER THE PIPELINE\n");
  EXPECT_EQ(p.heap->allocation_count(), 1u);  // the child's socket was freed with it
}

}  // namespace
}  // namespace mnv
