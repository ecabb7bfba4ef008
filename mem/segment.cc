#include "mem/segment.h"

#include <sys/mman.h>

#include <cstdint>

#include "mem/log.h"
#include "mem/page.h"

namespace mnv {

Segment Segment::map(std::size_t pages, std::size_t align_pages) {
  Segment s;
  MNV_ASSERT(align_pages >= 1 && (align_pages & (align_pages - 1)) == 0);
  std::size_t slack = (align_pages - 1) * kPageSize;
  void* p = ::mmap(nullptr, pages * kPageSize + slack, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return s;
  char* raw = static_cast<char*>(p);
  char* base = raw;
  if (slack != 0) {  // keep the aligned part, give the rest back
    auto align_bytes = static_cast<std::uintptr_t>(align_pages * kPageSize);
    base = reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(raw) + align_bytes - 1) & ~(align_bytes - 1));
    if (base != raw) ::munmap(raw, static_cast<std::size_t>(base - raw));
    std::size_t tail = slack - static_cast<std::size_t>(base - raw);
    if (tail != 0) ::munmap(base + pages * kPageSize, tail);
  }
  s.base_ = base;
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
