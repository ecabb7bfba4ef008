#include "mem/heap_pool.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdio>

#include "mem/log.h"
#include "mem/page.h"

namespace mnv {

namespace {
// vm.max_map_count minus the VMAs the process already has.
std::size_t vmas_left() {
  std::size_t limit = 65530, used = 0;
  if (FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
    if (std::fscanf(f, "%zu", &limit) != 1) limit = 65530;
    std::fclose(f);
  }
  if (FILE* f = std::fopen("/proc/self/maps", "r")) {
    for (int c; (c = std::fgetc(f)) != EOF;) used += c == '\n';
    std::fclose(f);
  }
  return limit > used ? limit - used : 0;
}
}  // namespace

HeapPool::HeapPool(std::size_t heap_pages, std::size_t count, std::size_t keep_pages, Guards guards)
    : heap_pages_(heap_pages), count_(count), keep_pages_(keep_pages), guards_(guards) {
  MNV_ASSERT(heap_pages >= 1 && count >= 1 && count <= UINT32_MAX);
  if (guards != Guards::kNone && 2 * count + 1024 > vmas_left()) {
    log_line("mnv: a pool of %zu guarded heaps needs %zu kernel VMAs; only %zu are left under vm.max_map_count: "
             "lower the pool size or raise vm.max_map_count", count, 2 * count, vmas_left());
    errno = ENOMEM;
    return;
  }
  segment_ = Segment::map(count * (heap_pages + 1));
  if (!segment_) return;
  free_ = std::make_unique<std::uint32_t[]>(count);
  for (std::size_t i = 0; i < count; ++i) {
    char* heap = segment_.base() + i * slot_bytes();
    if (guards == Guards::kTrap) ::mprotect(heap + heap_pages_ * kPageSize, kPageSize, PROT_NONE);
    if (guards == Guards::kSeparate) ::mprotect(heap + heap_pages_ * kPageSize, kPageSize, PROT_READ);
    free_[i] = static_cast<std::uint32_t>(count - 1 - i);  // hand out slot 0 first
  }
  free_top_ = count;
}

std::size_t HeapPool::slot_bytes() const { return (heap_pages_ + 1) * kPageSize; }

Heap* HeapPool::acquire() {
  if (free_top_ == 0) return nullptr;
  std::uint32_t i = free_[--free_top_];
  if (warm_ > 0) --warm_;  // (the top entry is warm while there are any)
  return Heap::init(segment_.base() + i * slot_bytes(), heap_pages_);
}

void HeapPool::release(Heap* heap) {
  auto i = static_cast<std::uint32_t>(index_of(heap));
  MNV_ASSERT(free_top_ < count_);
  protect(heap, PROT_READ | PROT_WRITE);
  std::size_t touched = heap->high_water_pages();
  bool keep = warm_ < kWarmHeaps;
  std::size_t from = keep ? keep_pages_ : 0;
  if (touched > from) {
    ::madvise(reinterpret_cast<char*>(heap) + from * kPageSize, (touched - from) * kPageSize, MADV_DONTNEED);
  }
  if (keep) {  // on top, warm
    heap->reset();
    free_[free_top_++] = i;
    ++warm_;
  } else {
    // Cold (not even its header stays: acquire() rebuilds it). It goes just below the warm
    // ones; the deepest warm one moves to the top.
    std::size_t below = free_top_ - warm_;
    free_[free_top_++] = free_[below];
    free_[below] = i;
  }
}

int HeapPool::protect(const Heap* heap, int prot) const {
  return ::mprotect(const_cast<Heap*>(heap), heap_pages_ * kPageSize, prot);
}

std::size_t HeapPool::index_of(const Heap* heap) const {
  MNV_ASSERT(owns(heap));
  auto off = static_cast<std::size_t>(reinterpret_cast<const char*>(heap) - segment_.base());
  MNV_ASSERT(off % slot_bytes() == 0);
  return off / slot_bytes();
}

Heap* HeapPool::at(std::size_t index) const {
  MNV_ASSERT(index < count_);
  return reinterpret_cast<Heap*>(segment_.base() + index * slot_bytes());
}

bool HeapPool::owns(const void* p) const {
  auto* c = static_cast<const char*>(p);
  return segment_ && c >= segment_.base() && c < segment_.base() + segment_.bytes();
}

}  // namespace mnv
