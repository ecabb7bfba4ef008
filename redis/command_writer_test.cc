// The command writer: the exact RESP bytes, command_size(), and a command larger than the ring
// streamed through it in pieces.
#include "redis/command_writer.h"

#include <gtest/gtest.h>

#include <string>

#include "runtime/test_process.h"

namespace mnv::redis {
namespace {

std::string drain(Vectoring& v) {
  std::string out(v.size(), '\0');
  v.read(out.data(), out.size());
  return out;
}

TEST(CommandWriter, WritesAnArrayOfBulkStrings) {
  TestProcess tp;
  Process::Scope scope(tp.process);
  Vectoring tx;
  ASSERT_TRUE(tx.ensure());
  Int n(-42);  // (the array views it: a temporary Int would be gone by the next line)
  const std::string_view args[] = {"SET", "key", "", n};
  CommandWriter w(args);
  EXPECT_TRUE(w.write(tx));
  EXPECT_TRUE(w.done());
  std::string want = "*4\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n$3\r\n-42\r\n";
  EXPECT_EQ(command_size(args), want.size());
  EXPECT_EQ(drain(tx), want);
}

TEST(CommandWriter, StreamsACommandLargerThanTheRing) {
  TestProcess tp;
  Process::Scope scope(tp.process);
  for (std::uint32_t cap : {5u, 7u, 13u, 64u}) {
    Vectoring tx(cap);
    ASSERT_TRUE(tx.ensure());
    std::string big(300, 'v');
    for (int i = 0; i < 300; ++i) big[i] = static_cast<char>('a' + i % 26);
    const std::string_view args[] = {"SET", "k", big};
    CommandWriter w(args);
    std::string out;
    int rounds = 0;
    while (!w.write(tx)) {
      EXPECT_TRUE(tx.full());
      out += drain(tx);
      ++rounds;
    }
    out += drain(tx);
    EXPECT_GT(rounds, 1);
    EXPECT_EQ(out, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$300\r\n" + big + "\r\n") << cap;
    EXPECT_EQ(out.size(), command_size(args));
  }
}

TEST(CommandWriter, ACommandAcrossTheRingsWrapIsWrittenInPieces) {
  TestProcess tp;
  Process::Scope scope(tp.process);
  Vectoring tx(64);
  ASSERT_TRUE(tx.ensure());
  std::string head(40, '.');
  tx.write(head.data(), head.size());
  char sink[30];
  tx.read(sink, sizeof sink);  // 10 bytes left at [30, 40): free space is [40, 64) and [0, 30)
  const std::string_view args[] = {"SET", "key:1", "value-that-wraps"};  // 45 bytes: not in 24
  CommandWriter w(args);
  EXPECT_TRUE(w.write(tx));
  EXPECT_EQ(drain(tx), std::string(10, '.') + "*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$16\r\nvalue-that-wraps\r\n");
}

TEST(CommandWriter, ZeroArgumentsAndLongCounts) {
  TestProcess tp;
  Process::Scope scope(tp.process);
  Vectoring tx;
  ASSERT_TRUE(tx.ensure());
  std::string_view many[12];
  for (auto& a : many) a = "x";
  CommandWriter w(many);
  EXPECT_TRUE(w.write(tx));
  std::string out = drain(tx);
  EXPECT_EQ(out.substr(0, 5), "*12\r\n");
  EXPECT_EQ(out.size(), command_size(many));
}

}  // namespace
}  // namespace mnv::redis
