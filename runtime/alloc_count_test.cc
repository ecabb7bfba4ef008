// Steady state allocates nothing from the global heap: 100,000 spawn/run/finish cycles (plus
// request/respond and raise/lower) after warm-up make zero calls to operator new or malloc.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "runtime/exec.h"
#include "runtime/future.h"
#include "runtime/raise.h"
#include "runtime/test_process.h"

namespace {
std::atomic<long> g_allocs{0};
}

void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

#ifndef MNV_SANITIZER
// glibc lets the executable interpose malloc; sanitizers interpose it themselves.
extern "C" void* __libc_malloc(std::size_t);
extern "C" void* __libc_calloc(std::size_t, std::size_t);
extern "C" void* __libc_realloc(void*, std::size_t);
extern "C" void* malloc(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
extern "C" void* calloc(std::size_t a, std::size_t b) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(a, b);
}
extern "C" void* realloc(void* p, std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
#endif

namespace mnv {
namespace {

Thread worker(int* done) {
  co_await yield();
  Message m = co_await listen();
  respond(m.from, m.data);
  ++*done;
}

Finally lower_always() {
  for (;;) co_await lower();
}

Thread driver(int cycles, int* done) {
  co_await finally(lower_always());
  for (int i = 0; i < cycles; ++i) {
    ThreadRef w = co_await spawn(worker(done));
    int v = i;
    co_await request(w, &v);
    co_await raise(EAGAIN);  // lowered straight back
  }
}

TEST(AllocCountTest, SteadyStateSpawnRunFinishMakesNoGlobalAllocations) {
  TestProcess p(16);
  int done = 0;
  p->start(driver, 1000, &done);  // warm-up
  p->dispatch();
  ASSERT_EQ(done, 1000);
  long before = g_allocs.load();
  p->start(driver, 100000, &done);
  p->dispatch();
  long after = g_allocs.load();
  ASSERT_EQ(done, 101000);
  EXPECT_EQ(after - before, 0) << "global allocations in steady state";
}

}  // namespace
}  // namespace mnv
