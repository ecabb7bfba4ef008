// mem/heap.h — a micro-heap: the allocator inside one contiguous, page-budgeted segment.
//
// Everything a micro-process owns (its coroutine frames, its sockets' rings, its own bookkeeping)
// is allocated here, so the whole process is one address range that one mprotect() can hide.
// The heap's own header sits at the start of the segment, inside that range.
//
// Allocation is a bump pointer ("top") with two ways back:
//  * stack order: freeing the block just below `top` lowers `top`, and keeps lowering it over any
//    free blocks beneath (the seed's page stack: loops that allocate and free cost nothing);
//  * out of order: a freed block in the middle goes on the free list of its size class and is
//    reused by the next allocation of that class. Size classes are 16-byte steps up to 256 bytes,
//    then four per power of two (<= 25% internal waste).
// The bound this gives: the high-water mark never exceeds the sum, over size classes, of the
// peak number of blocks of that class live at once times the class size. So it stops growing
// once a workload has reached its peak concurrency per size, however long it runs and in
// whatever order it frees; nothing fragments further with time. (Falling back to larger classes
// was measured and rejected: without splitting it wastes more than it saves.)
// Written here rather than taken from a library because it must live inside the segment it
// manages (no pointers out of it) and report exhaustion in pages, as the seed does.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mnv {

class Heap {
 public:
  static constexpr std::size_t kAlign = 16;
  static constexpr int kNumClasses = 108;

  // Builds a heap over [base, base + pages * kPageSize); the header is placed at `base`.
  static Heap* init(void* base, std::size_t pages);

  // Returns kAlign-aligned memory, or nullptr with errno = ENOMEM when the budget is spent;
  // needed_pages() then says how many pages this allocation would have needed.
  void* allocate(std::size_t bytes);
  // Frees a block from allocate(). Null is ignored.
  void free(void* p);
  // The heap a block from allocate() belongs to (read from the block's header).
  static Heap* owner(const void* p);
  // Forgets every allocation (the process is being reclaimed); statistics restart.
  void reset();
  // Gives the pages above `top` (touched earlier, unused now) back to the OS and lowers the
  // high-water mark to `top`. Returns the number of pages released. One madvise() call.
  std::size_t trim();

  bool contains(const void* p) const {
    auto a = reinterpret_cast<std::uintptr_t>(p);
    auto b = reinterpret_cast<std::uintptr_t>(this);
    return a >= b && a < b + bytes();
  }
  std::size_t pages() const { return pages_; }
  std::size_t bytes() const;
  // Bytes of blocks currently allocated (including headers).
  std::size_t used_bytes() const { return used_; }
  // Highest offset `top` has reached since init/reset: what the heap has touched.
  std::size_t high_water_bytes() const { return high_water_; }
  std::size_t high_water_pages() const;
  // Page budget that the last failed allocation would have needed; 0 if none failed.
  std::size_t needed_pages() const { return needed_pages_; }
  std::size_t allocation_count() const { return live_blocks_; }

  static int size_class(std::size_t block_bytes);
  static std::size_t class_bytes(int cls);

 private:
  struct Block;
  struct FreeNode;
  Heap() = default;
  char* first_block() const;
  void unlink_free(Block* b);
  void push_free(Block* b);
  FreeNode* free_head(int cls) const;
  void set_free_head(int cls, FreeNode* n);

  std::uint64_t magic_;
  std::size_t pages_;
  char* end_;
  char* top_;                 // first byte past the highest block
  std::uint32_t top_size_;    // size of the block that ends at top_ (0 if none)
  std::size_t used_;
  std::size_t high_water_;
  std::size_t needed_pages_;
  std::size_t live_blocks_;
  // Each class's free list head, as its offset from the header in kAlign units (0: empty): half
  // the header of pointers, so that an idle connection's heap (header, frames) fits in one page.
  std::uint32_t free_[kNumClasses];
};

}  // namespace mnv
