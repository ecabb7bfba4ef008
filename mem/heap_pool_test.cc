// Unit tests for mem/heap_pool and mem/kernel_heap: O(1) hand-out and return, guard pages,
// touched pages returned to the OS, protection of a whole heap in one call.
#include "mem/heap_pool.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <vector>

#include "mem/kernel_heap.h"
#include "mem/page.h"

namespace mnv {
namespace {

// Resident pages of [p, p + pages) according to mincore(2).
std::size_t resident_pages(const void* p, std::size_t pages) {
  std::vector<unsigned char> v(pages);
  EXPECT_EQ(::mincore(const_cast<void*>(p), pages * kPageSize, v.data()), 0);
  std::size_t n = 0;
  for (unsigned char c : v) n += c & 1;
  return n;
}

TEST(HeapPoolTest, HandsOutDistinctHeapsUntilFullThenReuses) {
  HeapPool pool(4, 8);
  ASSERT_TRUE(pool.ok());
  std::set<Heap*> seen;
  std::vector<Heap*> held;
  for (int i = 0; i < 8; ++i) {
    Heap* h = pool.acquire();
    ASSERT_NE(h, nullptr);
    EXPECT_TRUE(seen.insert(h).second);
    EXPECT_EQ(pool.at(pool.index_of(h)), h);
    EXPECT_EQ(h->pages(), 4u);
    held.push_back(h);
  }
  EXPECT_EQ(pool.acquire(), nullptr);
  EXPECT_EQ(pool.in_use(), 8u);
  pool.release(held[3]);
  EXPECT_EQ(pool.acquire(), held[3]);
}

TEST(HeapPoolTest, ReleaseReturnsTouchedPagesToTheOs) {
  HeapPool pool(64, 2, /*keep_pages=*/1);
  Heap* h = pool.acquire();
  void* p = h->allocate(40 * kPageSize);
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, 40 * kPageSize);
  EXPECT_GE(resident_pages(h, 64), 40u);
  pool.release(h);
  EXPECT_LE(resident_pages(h, 64), 1u);
}

// Load that ends gives its memory back: however many heaps were busy at the peak, only the
// warm set keeps pages; and warm heaps are the ones handed out next.
TEST(HeapPoolTest, OnlyTheWarmSetStaysResidentAfterLoadEnds) {
  constexpr std::size_t kCount = 3 * HeapPool::kWarmHeaps;
  HeapPool pool(8, kCount, /*keep_pages=*/1);
  ASSERT_TRUE(pool.ok());
  std::vector<Heap*> held;
  for (std::size_t i = 0; i < kCount; ++i) {
    Heap* h = pool.acquire();
    ASSERT_NE(h, nullptr);
    void* p = h->allocate(3 * kPageSize);
    ASSERT_NE(p, nullptr);
    std::memset(p, 1, 3 * kPageSize);
    held.push_back(h);
  }
  for (Heap* h : held) pool.release(h);
  EXPECT_EQ(pool.warm(), HeapPool::kWarmHeaps);
  std::set<Heap*> resident;
  std::size_t pages = 0;
  for (std::size_t i = 0; i < kCount; ++i) {
    std::size_t n = resident_pages(pool.at(i), 8);
    pages += n;
    if (n > 0) resident.insert(pool.at(i));
  }
  EXPECT_EQ(pages, HeapPool::kWarmHeaps);  // one kept page each, nothing else
  EXPECT_EQ(resident.size(), HeapPool::kWarmHeaps);
  for (std::size_t i = 0; i < HeapPool::kWarmHeaps; ++i) {
    Heap* h = pool.acquire();
    EXPECT_EQ(resident.count(h), 1u) << "heap " << i << " handed out was cold while warm ones were free";
  }
  EXPECT_EQ(pool.warm(), 0u);
  Heap* cold = pool.acquire();
  EXPECT_EQ(resident.count(cold), 0u);
  EXPECT_EQ(cold->pages(), 8u);  // (rebuilt from zeroed pages)
  EXPECT_NE(cold->allocate(64), nullptr);
}

// A busy pool (as many released as acquired) keeps reusing its warm heaps.
TEST(HeapPoolTest, ChurnBelowTheWarmSetReusesWarmHeaps) {
  HeapPool pool(4, 4 * HeapPool::kWarmHeaps, /*keep_pages=*/1);
  std::set<Heap*> seen;
  for (int round = 0; round < 100; ++round) {
    std::vector<Heap*> held;
    for (int i = 0; i < 10; ++i) held.push_back(pool.acquire());
    for (Heap* h : held) {
      seen.insert(h);
      pool.release(h);
    }
  }
  EXPECT_EQ(seen.size(), 10u);
  EXPECT_EQ(pool.warm(), 10u);
}

TEST(HeapPoolTest, UntouchedHeapsCostNoMemory) {
  HeapPool pool(256, 1000);  // ~1 GiB of address space
  ASSERT_TRUE(pool.ok());
  Heap* h = pool.acquire();
  EXPECT_LE(resident_pages(h, 256), 1u);
}

TEST(HeapPoolTest, ProtectHidesTheWholeHeapInOneCall) {
  HeapPool pool(4, 2);
  Heap* h = pool.acquire();
  ASSERT_EQ(pool.protect(h, PROT_NONE), 0);
  EXPECT_DEATH({ volatile char c = *reinterpret_cast<volatile char*>(h); (void)c; }, "");
  ASSERT_EQ(pool.protect(h, PROT_READ | PROT_WRITE), 0);
  EXPECT_EQ(h->pages(), 4u);
}

TEST(HeapPoolTest, GuardPageFollowsEachHeap) {
  HeapPool pool(2, 2, 1, HeapPool::Guards::kTrap);
  Heap* h = pool.acquire();
  char* past_end = reinterpret_cast<char*>(h) + 2 * kPageSize;
  EXPECT_DEATH({ *reinterpret_cast<volatile char*>(past_end) = 1; }, "");
}

TEST(KernelHeapTest, MakesObjectsInItsOwnSegment) {
  KernelHeap k(16);
  ASSERT_TRUE(k.ok());
  struct Table {
    int slots[100];
  };
  Table* t = k.make<Table>();
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(k.heap().contains(t));
  int* arr = k.make_array<int>(1000);
  ASSERT_NE(arr, nullptr);
  EXPECT_EQ(arr[999], 0);
  k.destroy(t);
  EXPECT_EQ(k.make_array<Table>(200), nullptr);  // 80 KB > 16 pages
}

}  // namespace
}  // namespace mnv
