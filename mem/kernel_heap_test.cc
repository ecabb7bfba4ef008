// mem/kernel_heap_test.cc — aligned segments and the kernel heap in huge pages (strict isolation).
#include "mem/kernel_heap.h"

#include <sys/mman.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "mem/page.h"

namespace mnv {
namespace {

constexpr std::size_t kHuge = std::size_t{2} << 20;

// The smaps block of the mapping that starts at `base` ("" when none does).
std::string smaps_of(const void* base) {
  FILE* f = std::fopen("/proc/self/smaps", "r");
  if (f == nullptr) return "";
  char line[512];
  char want[32];
  std::snprintf(want, sizeof want, "%lx-", static_cast<unsigned long>(reinterpret_cast<std::uintptr_t>(base)));
  std::string block;
  bool in = false;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    // A mapping's header line starts with its address (hex, lower case); its fields with a
    // capitalised name.
    bool header = std::isxdigit(static_cast<unsigned char>(line[0])) && !std::isupper(static_cast<unsigned char>(line[0]));
    if (header) in = std::strncmp(line, want, std::strlen(want)) == 0;
    if (in) block += line;
  }
  std::fclose(f);
  return block;
}

TEST(SegmentTest, AlignedMappingStartsOnTheBoundaryAndKeepsOnlyItsPages) {
  Segment s = Segment::map(3, 512);
  ASSERT_TRUE(s);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(s.base()) % kHuge, 0u);
  EXPECT_EQ(s.bytes(), 3 * kPageSize);
  std::memset(s.base(), 1, s.bytes());
  // The slack around it was given back: the mapping is exactly its pages.
  std::string block = smaps_of(s.base());
  ASSERT_FALSE(block.empty());
  EXPECT_NE(block.find("Size:                 12 kB"), std::string::npos) << block;
}

TEST(KernelHeapTest, HugePagesRoundUpAlignAndAreAdvised) {
  KernelHeap k(10, /*huge_pages=*/true);
  ASSERT_TRUE(k.ok());
  EXPECT_TRUE(k.huge_pages());
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(k.segment().base()) % kHuge, 0u);
  EXPECT_EQ(k.segment().bytes(), kHuge);
  std::string block = smaps_of(k.segment().base());
  EXPECT_NE(block.find(" hg"), std::string::npos) << "VmFlags should carry hg (MADV_HUGEPAGE):\n" << block;
  // Hiding and showing the whole heap works as with small pages.
  void* p = k.heap().allocate(64);
  ASSERT_NE(p, nullptr);
  std::memset(p, 7, 64);
  EXPECT_EQ(k.protect(PROT_NONE), 0);
  EXPECT_EQ(k.protect(PROT_READ | PROT_WRITE), 0);
  EXPECT_EQ(static_cast<unsigned char*>(p)[63], 7);
}

TEST(KernelHeapTest, SmallPagesByDefault) {
  KernelHeap k(10);
  ASSERT_TRUE(k.ok());
  EXPECT_FALSE(k.huge_pages());
  EXPECT_EQ(k.segment().pages(), 10u);
}

}  // namespace
}  // namespace mnv
