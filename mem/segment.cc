#include "mem/segment.h"

#include <sys/mman.h>

#include "mem/page.h"

namespace mnv {

Segment Segment::map(std::size_t pages) {
  Segment s;
  void* p = ::mmap(nullptr, pages * kPageSize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return s;
  s.base_ = static_cast<char*>(p);
  s.pages_ = pages;
  return s;
}

Segment::~Segment() {
  if (base_ != nullptr) ::munmap(base_, bytes());
}

Segment& Segment::operator=(Segment&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) ::munmap(base_, bytes());
    base_ = std::exchange(other.base_, nullptr);
    pages_ = std::exchange(other.pages_, 0);
  }
  return *this;
}

std::size_t Segment::bytes() const { return pages_ * kPageSize; }

}  // namespace mnv
