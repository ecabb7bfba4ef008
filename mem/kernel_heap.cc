#include "mem/kernel_heap.h"

#include <sys/mman.h>

namespace mnv {

KernelHeap::KernelHeap(std::size_t pages) : segment_(Segment::map(pages)) {
  if (segment_) heap_ = Heap::init(segment_.base(), pages);
}

int KernelHeap::protect(int prot) const { return ::mprotect(segment_.base(), segment_.bytes(), prot); }

}  // namespace mnv
