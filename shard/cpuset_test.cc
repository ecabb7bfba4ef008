// Tests of CpuSet and the cpuset(7) list form: set operations and iteration order, parse/format
// round trips (canonical and not), strides, the edges of the 1024-CPU range, and the error
// message (character position and reason) for each kind of malformed list.
#include "shard/cpuset.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mnv {
namespace {

CpuSet parse_ok(const std::string& text) {
  CpuSet set;
  std::string error;
  EXPECT_TRUE(parse_cpuset(text, &set, &error)) << text << ": " << error;
  return set;
}

std::string parse_error(const std::string& text) {
  CpuSet set;
  set.add(7);
  std::string error;
  EXPECT_FALSE(parse_cpuset(text, &set, &error)) << text;
  EXPECT_EQ(set.to_vector(), std::vector<int>{7}) << "a failed parse changed the output: " << text;
  return error;
}

TEST(CpuSetTest, AddContainsCountAndBounds) {
  CpuSet s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.count(), 0);
  EXPECT_EQ(s.first(), -1);
  EXPECT_TRUE(s.add(0));
  EXPECT_TRUE(s.add(63));
  EXPECT_TRUE(s.add(64));
  EXPECT_TRUE(s.add(1023));
  EXPECT_TRUE(s.add(64));  // again: no change
  EXPECT_FALSE(s.add(1024));
  EXPECT_FALSE(s.add(-1));
  EXPECT_EQ(s.count(), 4);
  EXPECT_TRUE(s.contains(63));
  EXPECT_FALSE(s.contains(62));
  EXPECT_FALSE(s.contains(-1));
  EXPECT_FALSE(s.contains(1024));
  s.remove(63);
  s.remove(5000);  // out of range: ignored
  EXPECT_FALSE(s.contains(63));
  EXPECT_EQ(s.count(), 3);
}

TEST(CpuSetTest, IteratesInIncreasingOrder) {
  CpuSet s;
  for (int cpu : {1023, 5, 64, 0, 127, 128, 63}) s.add(cpu);
  std::vector<int> seen;
  for (int cpu : s) seen.push_back(cpu);
  EXPECT_EQ(seen, (std::vector<int>{0, 5, 63, 64, 127, 128, 1023}));
  EXPECT_EQ(s.to_vector(), seen);
  EXPECT_EQ(s.first(), 0);
  EXPECT_EQ(s.next(5), 63);
  EXPECT_EQ(s.next(128), 1023);
  EXPECT_EQ(s.next(1023), -1);
  EXPECT_EQ(s.next(-5), 0);
}

TEST(CpuSetTest, IntersectionUnionDifferenceSubset) {
  CpuSet a = parse_ok("0-7,100");
  CpuSet b = parse_ok("4-11,100,200");
  EXPECT_EQ(format_cpuset(a & b), "4-7,100");
  EXPECT_EQ(format_cpuset(a | b), "0-11,100,200");
  EXPECT_EQ(format_cpuset(a - b), "0-3");
  EXPECT_TRUE((a & b).subset_of(a));
  EXPECT_FALSE(a.subset_of(b));
  EXPECT_TRUE(CpuSet().subset_of(a));
  EXPECT_EQ(a & b, b & a);
  EXPECT_NE(a, b);
}

TEST(CpuSetTest, ParsesListForms) {
  EXPECT_EQ(parse_ok("0").to_vector(), std::vector<int>{0});
  EXPECT_EQ(parse_ok("0-3,8,10-11").to_vector(), (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(parse_ok("0-7:2").to_vector(), (std::vector<int>{0, 2, 4, 6}));
  EXPECT_EQ(parse_ok("1-10:3,0").to_vector(), (std::vector<int>{0, 1, 4, 7, 10}));
  EXPECT_EQ(parse_ok("5-5").to_vector(), std::vector<int>{5});
  EXPECT_EQ(parse_ok("3,1,2,1").to_vector(), (std::vector<int>{1, 2, 3}));  // any order, repeats
  EXPECT_EQ(parse_ok("0-2:100").to_vector(), std::vector<int>{0});
  EXPECT_EQ(parse_ok("0-1023").count(), 1024);
  EXPECT_EQ(parse_ok("007").to_vector(), std::vector<int>{7});
  EXPECT_EQ(parse_ok("0-1\n").to_vector(), (std::vector<int>{0, 1}));  // as read from /sys
  EXPECT_EQ(parse_ok("  2 ").to_vector(), std::vector<int>{2});
}

TEST(CpuSetTest, FormatIsCanonical) {
  EXPECT_EQ(format_cpuset(CpuSet()), "");
  EXPECT_EQ(format_cpuset(parse_ok("0")), "0");
  EXPECT_EQ(format_cpuset(parse_ok("0,1")), "0-1");
  EXPECT_EQ(format_cpuset(parse_ok("8,0-3,10,11")), "0-3,8,10-11");
  EXPECT_EQ(format_cpuset(parse_ok("0-7:2")), "0,2,4,6");
  EXPECT_EQ(format_cpuset(parse_ok("62-65,1023")), "62-65,1023");
  EXPECT_EQ(format_cpuset(parse_ok("0-1023")), "0-1023");
}

TEST(CpuSetTest, RoundTrips) {
  for (const char* text : {"0", "0-1", "0-3,8,10-11", "1,3,5", "63-64", "0-1023", "1023", "2-4,6-8,1000-1010"}) {
    EXPECT_EQ(format_cpuset(parse_ok(text)), text);
  }
  // Every set of a pseudo-random family survives format then parse.
  unsigned x = 12345;
  for (int round = 0; round < 200; round++) {
    CpuSet s;
    for (int i = 0; i < 40; i++) {
      x = x * 1103515245u + 12345u;
      s.add(static_cast<int>((x >> 8) % (round % 2 ? 1024 : 80)));
    }
    EXPECT_EQ(parse_ok(format_cpuset(s)), s);
  }
}

TEST(CpuSetTest, ErrorsSayWhereAndWhy) {
  EXPECT_EQ(parse_error(""), "empty CPU list");
  EXPECT_EQ(parse_error(" \n"), "empty CPU list");
  EXPECT_EQ(parse_error("x"), "at character 1: expected a CPU number, found 'x'");
  EXPECT_EQ(parse_error("0-3,x"), "at character 5: expected a CPU number, found 'x'");
  EXPECT_EQ(parse_error("0-"), "at character 3: expected a CPU number, found end of list");
  EXPECT_EQ(parse_error("0,"), "at character 3: expected a CPU number, found end of list");
  EXPECT_EQ(parse_error("0,,1"), "at character 3: expected a CPU number, found ','");
  EXPECT_EQ(parse_error(",0"), "at character 1: expected a CPU number, found ','");
  EXPECT_EQ(parse_error("-1"), "at character 1: expected a CPU number, found '-'");
  EXPECT_EQ(parse_error("5-3"), "at character 1: range 5-3 is reversed");
  EXPECT_EQ(parse_error("0,9-2"), "at character 3: range 9-2 is reversed");
  EXPECT_EQ(parse_error("1024"), "at character 1: CPU 1024 is beyond the largest supported CPU (1023)");
  EXPECT_EQ(parse_error("0-4096"), "at character 3: CPU 4096 is beyond the largest supported CPU (1023)");
  EXPECT_EQ(parse_error("99999999999999999999"), "at character 1: CPU 99999999999999999999 is beyond the largest supported CPU (1023)");
  EXPECT_EQ(parse_error("0-7:0"), "at character 5: stride must be at least 1");
  EXPECT_EQ(parse_error("0-7:"), "at character 5: expected a stride, found end of list");
  EXPECT_EQ(parse_error("3:2"), "at character 2: expected ',' or '-', found ':'");
  EXPECT_EQ(parse_error("0-3-5"), "at character 4: expected ',' or ':', found '-'");
  EXPECT_EQ(parse_error("0-7:2:2"), "at character 6: expected ',', found ':'");
  EXPECT_EQ(parse_error("0 1"), "at character 2: expected ',' or '-', found ' '");
  EXPECT_EQ(parse_error("0;1"), "at character 2: expected ',' or '-', found ';'");
  EXPECT_EQ(parse_error("0\x01"), "at character 2: expected ',' or '-', found byte 0x01");
  EXPECT_EQ(parse_error("  x"), "at character 3: expected a CPU number, found 'x'");  // positions count the spaces
}

}  // namespace
}  // namespace mnv
