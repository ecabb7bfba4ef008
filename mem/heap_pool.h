// mem/heap_pool.h — address space for many micro-heaps, reserved once, handed out in O(1).
//
// One MAP_NORESERVE mapping holds `count` slots of `heap_pages` pages, each followed by a guard
// page. Guards are off by default (one VMA for the whole pool). With Guards::kTrap the guard is
// PROT_NONE, so running off the end of one heap traps instead of touching the next. With
// Guards::kSeparate (for isolation) the guard is PROT_READ, a protection no heap ever has: no
// two heaps are then ever merged into one kernel VMA, so protecting or showing a heap only flips
// its own VMA instead of splitting and merging a large one — measured here at ~1 µs per
// mprotect instead of ~3 µs. Both guard kinds cost two VMAs per heap (vm.max_map_count is 65530
// by default); the pool refuses (ok() false, errno ENOMEM) when that would not fit.
// A heap costs memory only for the pages it touched. Releasing a heap gives back what it touched
// in one madvise(MADV_DONTNEED): every page beyond the first `keep_pages` while fewer than
// kWarmHeaps free heaps are warm (keep those pages), else every page. Warm heaps are handed out
// first, so a busy server reuses resident pages and pays no page faults for them, and no more
// system calls than one per release; once load ends, at most kWarmHeaps * keep_pages pages stay
// resident however many heaps were in use at the peak (without the limit, 20,000 connections
// left 60+ MiB behind).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "mem/heap.h"
#include "mem/segment.h"

namespace mnv {

class HeapPool {
 public:
  // Reserves the address space; check ok() (errno says why when it is false).
  enum class Guards { kNone, kTrap, kSeparate };
  HeapPool(std::size_t heap_pages, std::size_t count, std::size_t keep_pages = 1, Guards guards = Guards::kNone);
  HeapPool(const HeapPool&) = delete;
  HeapPool& operator=(const HeapPool&) = delete;

  bool ok() const { return static_cast<bool>(segment_); }
  // A fresh, empty heap, or nullptr when all `count` are in use.
  Heap* acquire();
  // Takes a heap back: its memory is forgotten and its touched pages returned to the OS.
  void release(Heap* heap);

  // mprotect() of the whole heap (one call); works while the heap is PROT_NONE.
  int protect(const Heap* heap, int prot) const;
  // Index of a heap's slot, stable for the pool's life.
  std::size_t index_of(const Heap* heap) const;
  Heap* at(std::size_t index) const;
  bool owns(const void* p) const;

  std::size_t heap_pages() const { return heap_pages_; }
  std::size_t capacity() const { return count_; }
  std::size_t in_use() const { return count_ - free_top_; }
  // Free heaps that kept their first keep_pages pages (at most kWarmHeaps).
  std::size_t warm() const { return warm_; }

  // Free heaps that keep their first pages resident; heaps released beyond it give back all.
  static constexpr std::size_t kWarmHeaps = 64;

 private:
  std::size_t slot_bytes() const;

  Segment segment_;
  std::size_t heap_pages_;
  std::size_t count_;
  std::size_t keep_pages_;
  Guards guards_;
  // Stack of free slot indices; its top warm_ entries are warm heaps, the ones below are cold
  // (every page given back), so acquire() hands out warm heaps first.
  std::unique_ptr<std::uint32_t[]> free_;
  std::size_t free_top_ = 0;
  std::size_t warm_ = 0;
};

}  // namespace mnv
