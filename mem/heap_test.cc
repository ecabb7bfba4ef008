// Unit tests for mem/heap: alignment, stack-order reuse, out-of-order reuse by size class,
// exhaustion reported in pages, and a bounded high-water mark under a long mixed workload.
#include "mem/heap.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <random>
#include <vector>
#include <cstring>
#include <sys/mman.h>

#include "mem/page.h"
#include "mem/segment.h"

namespace mnv {
namespace {

struct TestHeap {
  explicit TestHeap(std::size_t pages) : seg(Segment::map(pages)), heap(Heap::init(seg.base(), pages)) {}
  Segment seg;
  Heap* heap;
};

TEST(HeapTest, SizeClassesRoundUpAndAreMonotonic) {
  std::size_t prev = 0;
  for (int c = 0; c < Heap::kNumClasses; ++c) {
    EXPECT_GT(Heap::class_bytes(c), prev);
    EXPECT_EQ(Heap::class_bytes(c) % Heap::kAlign, 0u);
    EXPECT_EQ(Heap::size_class(Heap::class_bytes(c)), c);
    prev = Heap::class_bytes(c);
  }
  for (std::size_t n = 1; n < 100000; n += 7) {
    std::size_t got = Heap::class_bytes(Heap::size_class(n));
    EXPECT_GE(got, n);
    EXPECT_LE(got, n < 32 ? 32 : n + n / 4 + 16);  // at most 25% (plus 16-byte rounding) of waste
  }
}

TEST(HeapTest, AllocationsAreAlignedInsideAndOwned) {
  TestHeap t(4);
  for (std::size_t n : {1u, 15u, 16u, 17u, 100u, 1000u}) {
    void* p = t.heap->allocate(n);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % Heap::kAlign, 0u);
    EXPECT_TRUE(t.heap->contains(p));
    EXPECT_TRUE(t.heap->contains(static_cast<char*>(p) + n - 1));
    EXPECT_EQ(Heap::owner(p), t.heap);
  }
}

TEST(HeapTest, StackOrderFreeLowersTopAcrossFreedBlocks) {
  TestHeap t(4);
  std::size_t base = t.heap->high_water_bytes();
  void* a = t.heap->allocate(100);
  void* b = t.heap->allocate(200);
  void* c = t.heap->allocate(300);
  std::size_t peak = t.heap->high_water_bytes();
  t.heap->free(b);  // out of order: goes to a free list
  EXPECT_EQ(t.heap->allocation_count(), 2u);
  t.heap->free(c);  // top: lowers past c and the free b
  t.heap->free(a);
  EXPECT_EQ(t.heap->used_bytes(), 0u);
  // Everything is reusable from the bottom again: the same sequence reaches the same peak.
  a = t.heap->allocate(100);
  b = t.heap->allocate(200);
  c = t.heap->allocate(300);
  EXPECT_EQ(t.heap->high_water_bytes(), peak);
  EXPECT_GT(peak, base);
}

TEST(HeapTest, OutOfOrderFreeIsReusedBySameClass) {
  TestHeap t(4);
  void* a = t.heap->allocate(64);
  void* b = t.heap->allocate(64);
  (void)b;
  t.heap->free(a);
  void* c = t.heap->allocate(60);  // same class as 64
  EXPECT_EQ(c, a);
}

TEST(HeapTest, ExhaustionReportsNeededPagesAndWritesNothingOutside) {
  TestHeap t(2);
  errno = 0;
  EXPECT_EQ(t.heap->allocate(3 * kPageSize), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(t.heap->needed_pages(), 4u);  // header + 3 pages of payload (+ block header) = 4 pages
  EXPECT_EQ(t.heap->used_bytes(), 0u);
  // The heap stays usable after a failure.
  EXPECT_NE(t.heap->allocate(100), nullptr);
}

TEST(HeapTest, ExhaustionWithGuardPageNeverTouchesIt) {
  // A heap directly followed by a PROT_NONE page: filling it must not fault.
  Segment seg = Segment::map(3);
  ASSERT_TRUE(seg);
  ASSERT_EQ(::mprotect(seg.base() + 2 * kPageSize, kPageSize, PROT_NONE), 0);
  Heap* h = Heap::init(seg.base(), 2);
  std::size_t n = 0;
  while (void* p = h->allocate(48)) {
    std::memset(p, 0xAB, 48);
    ++n;
  }
  EXPECT_GT(n, 100u);
  EXPECT_EQ(h->needed_pages(), 3u);
}

// Random sizes and random free order: the high-water mark stays within the documented bound
// (peak live blocks per class times class size, plus the header).
TEST(HeapTest, HighWaterStaysWithinPerClassPeakBound) {
  TestHeap t(256);
  std::mt19937 rng(42);
  std::vector<void*> live;
  const std::size_t sizes[] = {48, 100, 180, 320, 700, 1500, 3000};
  std::vector<std::size_t> live_per_class(Heap::kNumClasses), peak_per_class(Heap::kNumClasses);
  std::vector<int> cls_of;
  for (int i = 0; i < 1000000; ++i) {
    if (live.size() < 64 && (live.empty() || rng() % 2 == 0)) {
      std::size_t n = sizes[rng() % 7];
      void* p = t.heap->allocate(n);
      ASSERT_NE(p, nullptr);
      int c = Heap::size_class(n + Heap::kAlign);
      live.push_back(p);
      cls_of.push_back(c);
      if (++live_per_class[c] > peak_per_class[c]) peak_per_class[c] = live_per_class[c];
    } else {
      std::size_t k = rng() % live.size();
      t.heap->free(live[k]);
      --live_per_class[cls_of[k]];
      live[k] = live.back();
      live.pop_back();
      cls_of[k] = cls_of.back();
      cls_of.pop_back();
    }
  }
  std::size_t bound = kPageSize;  // the heap header's page
  for (int c = 0; c < Heap::kNumClasses; ++c) bound += peak_per_class[c] * Heap::class_bytes(c);
  EXPECT_LE(t.heap->high_water_bytes(), bound);
}

TEST(HeapTest, ResetForgetsEverything) {
  TestHeap t(2);
  ASSERT_NE(t.heap->allocate(1000), nullptr);
  t.heap->reset();
  EXPECT_EQ(t.heap->used_bytes(), 0u);
  EXPECT_EQ(t.heap->allocation_count(), 0u);
  EXPECT_EQ(t.heap->high_water_pages(), 1u);
}

}  // namespace
}  // namespace mnv
