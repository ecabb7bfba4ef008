// mem/kernel_heap.h — the virtual kernel's own micro-heap.
//
// The kernel's tables (fd table, process table, queue heads) live in one segment of their own,
// apart from every process's heap, so `strict` isolation can hide them with one mprotect() while
// a process runs, and so they can be sized and bound to a NUMA node per shard.
#pragma once

#include <cstddef>
#include <new>
#include <utility>

#include "mem/heap.h"
#include "mem/segment.h"

namespace mnv {

class KernelHeap {
 public:
  // Reserves `pages` pages (touched on demand); check ok().
  explicit KernelHeap(std::size_t pages);
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
};

}  // namespace mnv
