// Unit tests for micro-threads and micro-processes: frames in the heap, locals surviving
// suspension, the execution API (play, pause, call, yield, wait), dispatch semantics, and a
// million create/finish cycles with a flat high-water mark.
#include "runtime/thread.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/block.h"
#include "runtime/exec.h"
#include "runtime/future.h"
#include "runtime/process.h"
#include "runtime/test_process.h"

namespace mnv {
namespace {

Thread counter(int* out, int n) {
  int local = 0;  // a local that must survive every suspension
  for (int i = 0; i < n; ++i) {
    ++local;
    co_await yield();
  }
  *out = local;
}

TEST(ThreadTest, FrameIsInsideTheProcessHeapAndLocalsSurvive) {
  TestProcess p;
  int result = 0;
  Thread t;
  {
    Process::Scope scope(p.process);
    t = counter(&result, 100);
  }
  ASSERT_TRUE(t);
  EXPECT_TRUE(p.heap->contains(t.get()));
  EXPECT_TRUE(p.heap->contains(t.get()->body.address()));
  p->spawn(std::move(t));
  EXPECT_EQ(p->thread_count(), 1u);
  EXPECT_EQ(p->dispatch(), 0u);
  EXPECT_EQ(result, 100);
}

TEST(ThreadTest, ThreadStartsOnlyWhenDispatched) {
  TestProcess p;
  int result = -1;
  p->start(counter, &result, 0);
  EXPECT_EQ(result, -1);
  p->dispatch();
  EXPECT_EQ(result, 0);
}

Thread logger(std::vector<std::string>* log, const char* name, int n) {
  for (int i = 0; i < n; ++i) {
    log->push_back(std::string(name) + std::to_string(i));
    co_await yield();
  }
}

TEST(ThreadTest, YieldRoundRobinsWithinOneDispatch) {
  TestProcess p;
  std::vector<std::string> log;
  log.reserve(16);
  p->start(logger, &log, "a", 3);
  p->start(logger, &log, "b", 3);
  EXPECT_EQ(p->dispatch(), 0u);  // one dispatch runs everything until all have ended
  EXPECT_EQ(log, (std::vector<std::string>{"a0", "b0", "a1", "b1", "a2", "b2"}));
}

Thread sleeper(std::vector<std::string>* log) {
  log->push_back("sleeper paused");
  co_await pause();
  log->push_back("sleeper played");
}

Thread waker(std::vector<std::string>* log, ThreadRef sleeper) {
  log->push_back("waker plays sleeper");
  play(sleeper);
  log->push_back("waker continues");
  co_return;
}

TEST(ThreadTest, PauseHoldsUntilPlayedAndPlayDoesNotSwitch) {
  TestProcess p;
  std::vector<std::string> log;
  ThreadRef s = p->start(sleeper, &log);
  EXPECT_EQ(p->dispatch(), 1u);  // the sleeper is paused, not ended
  EXPECT_EQ(s->status, ThreadState::Status::kPaused);
  p->start(waker, &log, s);
  EXPECT_EQ(p->dispatch(), 0u);
  EXPECT_EQ(log, (std::vector<std::string>{"sleeper paused", "waker plays sleeper", "waker continues",
                                           "sleeper played"}));
}

Thread callee_thread(std::vector<std::string>* log) {
  for (;;) {
    log->push_back("callee runs");
    co_await pause();
  }
}

Thread caller_thread(std::vector<std::string>* log, ThreadRef callee, ThreadRef bystander) {
  play(bystander);  // queued before the call, but call() makes the callee run first
  log->push_back("caller calls");
  co_await call(callee);
  log->push_back("caller resumed");
}

Thread bystander_thread(std::vector<std::string>* log) {
  log->push_back("bystander runs");
  co_return;
}

TEST(ThreadTest, CallTransfersToTheCalleeNext) {
  TestProcess p;
  std::vector<std::string> log;
  ThreadRef callee = p->start(callee_thread, &log);
  p->dispatch();
  Thread b;
  {
    Process::Scope scope(p.process);
    b = bystander_thread(&log);
  }
  ThreadRef bystander = b.get();
  p->adopt(b.release());
  ThreadRef caller = p->start(caller_thread, &log, callee, bystander);
  p->dispatch();
  EXPECT_EQ(log, (std::vector<std::string>{"callee runs", "caller calls", "callee runs", "bystander runs"}));
  EXPECT_EQ(caller->status, ThreadState::Status::kPaused);  // paused by call until played again
  p->play(caller);
  p->dispatch();
  EXPECT_EQ(log.back(), "caller resumed");
}

Thread blocker(Block* b, int* woke) {
  co_await wait(b);
  ++*woke;
}

TEST(ThreadTest, WaitBlocksUntilTheKernelReadiesTheThread) {
  TestProcess p;
  int woke = 0;
  Block real;  // what a socket would block on; no kernel here, so nothing arms it
  Block* block = &real;
  ThreadRef t = p->start(blocker, block, &woke);
  EXPECT_EQ(p->dispatch(), 1u);
  EXPECT_EQ(woke, 0);
  EXPECT_FALSE(p->blocked().empty());
  EXPECT_EQ(p->blocked().front(), t);
  EXPECT_EQ(t->block, block);
  p->ready(t);
  EXPECT_TRUE(p->blocked().empty());
  EXPECT_EQ(p->dispatch(), 0u);
  EXPECT_EQ(woke, 1);
}

Task<int> add_after_yield(int a, int b) {
  co_await yield();
  co_return a + b;
}

Task<int> nested(int x) {
  int y = co_await add_after_yield(x, 1);
  co_return y * 2;
}

Thread task_user(int* out) { *out = co_await nested(20); }

TEST(ThreadTest, TasksSuspendTheirThreadAndReturnValues) {
  TestProcess p;
  int out = 0;
  p->start(task_user, &out);
  EXPECT_EQ(p->dispatch(), 0u);
  EXPECT_EQ(out, 42);
  EXPECT_EQ(p.heap->allocation_count(), 1u);  // only the Process itself remains
}

TEST(ThreadTest, DestroyReclaimsSuspendedThreads) {
  TestProcess p;
  std::vector<std::string> log;
  for (int i = 0; i < 10; ++i) p->start(sleeper, &log);
  EXPECT_EQ(p->dispatch(), 10u);
  EXPECT_GT(p.heap->allocation_count(), 10u);
  // TestProcess's destructor destroys the process; afterwards the heap must be empty.
  p.process->destroy();
  EXPECT_EQ(p.heap->allocation_count(), 0u);
  p.process = Process::create(p.heap);
}

// Frames of several sizes: the array is used across a suspension, so it lives in the frame.
template <std::size_t N>
Thread sized(int yields, int* live) {
  volatile char pad[N];
  pad[0] = 1;
  for (int i = 0; i < yields; ++i) co_await yield();
  pad[N - 1] = pad[0];
  --*live;
}

Thread cycler(int cycles, int* live, int* started) {
  for (int i = 0; i < cycles; ++i) {
    // Mixed sizes and lifetimes: threads finish out of the order they were created in.
    int yields = (i * 7) % 5;
    Thread t;
    switch (i % 4) {
      case 0: t = sized<64>(yields, live); break;
      case 1: t = sized<400>(yields, live); break;
      case 2: t = sized<1200>(yields, live); break;
      default: t = sized<3000>(yields, live); break;
    }
    ++*live;
    ++*started;
    co_await spawn(std::move(t));
    if (*live >= 16) co_await yield();
  }
}

TEST(ThreadTest, MillionCreateFinishCyclesKeepHighWaterFlat) {
  TestProcess p(64);
  int live = 0, started = 0;
  ThreadRef driver = p->start(cycler, 1000000, &live, &started);
  (void)driver;
  // Warm up with a first slice of cycles, then run the rest and compare the high-water mark.
  TestProcess warm(64);
  int wl = 0, ws = 0;
  warm->start(cycler, 100000, &wl, &ws);
  warm->dispatch();
  p->dispatch();
  EXPECT_EQ(started, 1000000);
  EXPECT_EQ(live, 0);
  EXPECT_EQ(p.heap->high_water_bytes(), warm.heap->high_water_bytes());
  EXPECT_EQ(p.heap->allocation_count(), 1u);
}

// Counts its runs; the kernel's trim pass calls Process::release_idle() on idle processes.
struct CountingHook : IdleHook {
  explicit CountingHook(int* runs) : IdleHook(&CountingHook::run), runs(runs) {}
  static void run(IdleHook* h) { ++*static_cast<CountingHook*>(h)->runs; }
  int* runs;
};

TEST(ProcessTest, IdleHooksRunOnceEachWhenTheProcessIdles) {
  TestProcess p;
  int runs = 0;
  CountingHook a(&runs), b(&runs);
  p->release_when_idle(&a);
  p->release_when_idle(&a);  // registered once
  p->release_when_idle(&b);
  p->release_idle();
  EXPECT_EQ(runs, 2);
  p->release_idle();  // each run unregisters
  EXPECT_EQ(runs, 2);
  {
    CountingHook gone(&runs);
    p->release_when_idle(&gone);
  }  // unlinks itself
  p->release_when_idle(&a);
  p->release_idle();
  EXPECT_EQ(runs, 3);
}

}  // namespace
struct CountingReclaim : ReclaimHook {
  explicit CountingReclaim(int* runs) : ReclaimHook(&CountingReclaim::run), runs(runs) {}
  static void run(ReclaimHook* h) { ++*static_cast<CountingReclaim*>(h)->runs; }
  int* runs;
};

// A hook still registered when the process is reclaimed runs once; one given back does not.
TEST(ProcessTest, ReclaimHooksRunOnceWhenTheProcessIsDestroyed) {
  int runs = 0;
  CountingReclaim a(&runs), b(&runs);
  {
    TestProcess p;
    p->on_reclaim(&a);
    p->on_reclaim(&a);  // registered once
    p->on_reclaim(&b);
    {
      CountingReclaim given_back(&runs);
      p->on_reclaim(&given_back);
    }  // unlinks itself
    p->release_idle();  // (idle hooks are another list)
    EXPECT_EQ(runs, 0);
  }  // destroy()
  EXPECT_EQ(runs, 2);
}

}  // namespace mnv
