// runtime/global_alloc_counter.h — counts every global heap allocation of a test binary.
//
// Linking the `global_alloc_counter` library replaces operator new/new[] (and, outside the
// sanitizer builds, malloc/calloc/realloc, which glibc lets the executable interpose) with
// versions that count each call, so a test can show a hot path allocates nothing:
//
//   long before = mnv::global_allocations();
//   ... 100,000 cycles ...
//   EXPECT_EQ(mnv::global_allocations() - before, 0);
#pragma once

namespace mnv {

// Global allocations made so far by any thread of this binary.
long global_allocations();

}  // namespace mnv
