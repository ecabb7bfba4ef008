// mem/kernel_heap.h — the virtual kernel's own micro-heap.
//
// The kernel's tables (fd table, process table, queue heads) live in one segment of their own,
// apart from every process's heap, so `strict` isolation can hide them with one mprotect() while
// a process runs, and so they can be sized and bound to a NUMA node per shard.
//
// For `strict`, the heap can sit in transparent huge pages: mprotect() then changes one PMD per
// 2 MiB instead of one PTE per touched 4 KiB page, and flushes a handful of TLB entries instead
// of the whole TLB. Measured here (mprotect of a 6 MiB table region): ~0.9 µs per toggle with
// huge pages against 4.9 µs with 38 touched 4 KiB pages (perf/RESULTS.md, "strict").
#pragma once

#include <cstddef>
#include <new>
#include <utility>

#include "mem/heap.h"
#include "mem/segment.h"

namespace mnv {

class KernelHeap {
 public:
  // Reserves `pages` pages (touched on demand); check ok(). `huge_pages`: round up to whole
  // 2 MiB huge pages, aligned, and ask for transparent huge pages (madvise; where THP is off,
  // the heap works the same with 4 KiB pages).
  explicit KernelHeap(std::size_t pages, bool huge_pages = false);
  bool huge_pages() const { return huge_pages_; }
  bool ok() const { return heap_ != nullptr; }
  Heap& heap() const { return *heap_; }
  const Segment& segment() const { return segment_; }

  // Constructs a T (or an array of n Ts) in the kernel heap; nullptr when the heap is full.
  template <typename T, typename... Args>
  T* make(Args&&... args) {
    void* p = heap_->allocate(sizeof(T));
    return p == nullptr ? nullptr : new (p) T(std::forward<Args>(args)...);
  }
  template <typename T>
  T* make_array(std::size_t n) {
    void* p = heap_->allocate(sizeof(T) * n);
    if (p == nullptr) return nullptr;
    T* a = static_cast<T*>(p);
    for (std::size_t i = 0; i < n; ++i) new (a + i) T();
    return a;
  }
  template <typename T>
  void destroy(T* p) {
    if (p == nullptr) return;
    p->~T();
    heap_->free(p);
  }

  // mprotect() of the whole kernel heap.
  int protect(int prot) const;

 private:
  Segment segment_;
  Heap* heap_ = nullptr;
  bool huge_pages_ = false;  // MADV_HUGEPAGE was accepted
};

}  // namespace mnv
