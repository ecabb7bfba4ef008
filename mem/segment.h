// mem/segment.h — an owned, page-aligned anonymous mapping.
//
// Every micro-heap, the heap pool and the kernel heap sit in segments: one contiguous range of
// address space, so one mprotect() call can hide or show all of it. Reserving with
// MAP_NORESERVE means untouched pages cost no memory.
#pragma once

#include <cstddef>
#include <utility>

namespace mnv {

class Segment {
 public:
  Segment() = default;
  // Maps `pages` pages read-write, starting at a multiple of `align_pages` pages (a power of
  // two). Returns an empty segment (and sets errno) on failure.
  static Segment map(std::size_t pages, std::size_t align_pages = 1);
  ~Segment();
  Segment(Segment&& other) noexcept { *this = std::move(other); }
  Segment& operator=(Segment&& other) noexcept;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  explicit operator bool() const { return base_ != nullptr; }
  char* base() const { return base_; }
  std::size_t pages() const { return pages_; }
  std::size_t bytes() const;

 private:
  char* base_ = nullptr;
  std::size_t pages_ = 0;
};

}  // namespace mnv
