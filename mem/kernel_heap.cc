#include "mem/kernel_heap.h"

#include <sys/mman.h>

#include "mem/page.h"

namespace mnv {

namespace {
constexpr std::size_t kHugePagePages = (std::size_t{2} << 20) / kPageSize;
}

KernelHeap::KernelHeap(std::size_t pages, bool huge_pages) {
  if (huge_pages) pages = (pages + kHugePagePages - 1) / kHugePagePages * kHugePagePages;
  segment_ = Segment::map(pages, huge_pages ? kHugePagePages : 1);
  if (!segment_) return;
  if (huge_pages) huge_pages_ = ::madvise(segment_.base(), segment_.bytes(), MADV_HUGEPAGE) == 0;
  heap_ = Heap::init(segment_.base(), pages);
}

int KernelHeap::protect(int prot) const { return ::mprotect(segment_.base(), segment_.bytes(), prot); }

}  // namespace mnv
