// mem/page.h — the page size every micro-heap is measured in.
//
// Heaps are budgeted, reserved and protected in whole pages; the constant is fixed at compile time
// (x86-64 and arm64 Linux here use 4 KiB base pages) and checked against the OS at start-up.
#pragma once

#include <cstddef>

namespace mnv {

inline constexpr std::size_t kPageSize = 4096;

constexpr std::size_t pages_for(std::size_t bytes) { return (bytes + kPageSize - 1) / kPageSize; }

// Aborts with a message if the OS page size differs from kPageSize.
void check_page_size();

}  // namespace mnv
