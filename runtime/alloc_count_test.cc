// Steady state allocates nothing from the global heap: 100,000 spawn/run/finish cycles (plus
// request/respond and raise/lower) after warm-up make zero calls to operator new or malloc.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "runtime/exec.h"
#include "runtime/global_alloc_counter.h"
#include "runtime/future.h"
#include "runtime/raise.h"
#include "runtime/test_process.h"


namespace mnv {
namespace {

// Keeps the compiler from eliding a new/delete pair.
void benchmark_escape(void* p) { asm volatile("" : : "g"(p) : "memory"); }

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

TEST(AllocCountTest, TheCounterSeesGlobalAllocations) {
  long before = global_allocations();
  auto* p = new int(7);
  benchmark_escape(p);
  delete p;
  EXPECT_GE(global_allocations() - before, 1);  // (operator new, and malloc beneath it)
}

TEST(AllocCountTest, SteadyStateSpawnRunFinishMakesNoGlobalAllocations) {
  TestProcess p(16);
  int done = 0;
  p->start(driver, 1000, &done);  // warm-up
  p->dispatch();
  ASSERT_EQ(done, 1000);
  long before = global_allocations();
  p->start(driver, 100000, &done);
  p->dispatch();
  long after = global_allocations();
  ASSERT_EQ(done, 101000);
  EXPECT_EQ(after - before, 0) << "global allocations in steady state";
}

}  // namespace
}  // namespace mnv
