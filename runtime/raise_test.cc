// Unit tests for raise / finally / lower: lower resumes exactly after the raise, a handler that
// ends ends its thread, no handler ends the thread, ENOMEM carries the needed pages, a raise into
// a trapped thread never resumes its frame, and the error records where it was raised.
#include "runtime/raise.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <string>
#include <vector>

#include "runtime/exec.h"
#include "runtime/future.h"
#include "runtime/test_process.h"

namespace mnv {
namespace {

using Log = std::vector<std::string>;

Finally lowering_handler(Log* log) {
  for (;;) {
    log->push_back("handler " + std::to_string(error().code));
    co_await lower();
  }
}

Thread raises_twice(Log* log) {
  co_await finally(lowering_handler(log));
  log->push_back("before");
  int a = co_await raise(EAGAIN);
  log->push_back("after first " + std::to_string(a));
  co_await yield();  // suspension between raises: the handler's state survives too
  int b = co_await raise(EINTR);
  log->push_back("after second " + std::to_string(b));
}

TEST(RaiseTest, LowerResumesExactlyAfterTheRaise) {
  TestProcess p;
  Log log;
  p->start(raises_twice, &log);
  EXPECT_EQ(p->dispatch(), 0u);
  EXPECT_EQ(log, (Log{"before", "handler " + std::to_string(EAGAIN), "after first " + std::to_string(EAGAIN),
                      "handler " + std::to_string(EINTR), "after second " + std::to_string(EINTR)}));
  EXPECT_EQ(p.heap->allocation_count(), 1u);  // thread and handler frames freed
}

Finally ending_handler(Log* log, Error* seen) {
  *seen = error();
  log->push_back("handler ends the thread");
  co_return;
}

Thread raises_and_is_ended(Log* log, Error* seen) {
  co_await finally(ending_handler(log, seen));
  co_await raise(ECONNRESET);
  log->push_back("never");
}

TEST(RaiseTest, HandlerThatEndsEndsTheThreadAndRecordsWhere) {
  TestProcess p;
  Log log;
  Error seen;
  p->start(raises_and_is_ended, &log, &seen);
  EXPECT_EQ(p->dispatch(), 0u);
  EXPECT_EQ(log, (Log{"handler ends the thread"}));
  EXPECT_EQ(seen.code, ECONNRESET);
  EXPECT_NE(std::string(seen.where.file_name()).find("raise_test.cc"), std::string::npos);
  EXPECT_GT(seen.where.line(), 0u);
  char buf[256];
  EXPECT_NE(std::string(seen.describe(buf, sizeof buf)).find("ECONNRESET"), std::string::npos);
  EXPECT_EQ(p.heap->allocation_count(), 1u);
}

Thread raises_without_handler(Log* log) {
  log->push_back("raising");
  co_await raise(EINVAL);
  log->push_back("never");
}

TEST(RaiseTest, NoHandlerEndsTheThreadOnly) {
  TestProcess p;
  Log log;
  p->start(raises_without_handler, &log);
  p->start(raises_without_handler, &log);
  EXPECT_EQ(p->dispatch(), 0u);
  EXPECT_EQ(log, (Log{"raising", "raising"}));
}

Task<int> inner_raises() {
  int code = co_await raise(ENOENT);
  co_return code + 1000;
}

Thread raises_inside_task(Log* log) {
  co_await finally(lowering_handler(log));
  int v = co_await inner_raises();
  log->push_back("task returned " + std::to_string(v));
}

TEST(RaiseTest, RaiseInsideANestedTaskLowersBackIntoTheTask) {
  TestProcess p;
  Log log;
  p->start(raises_inside_task, &log);
  EXPECT_EQ(p->dispatch(), 0u);
  EXPECT_EQ(log, (Log{"handler " + std::to_string(ENOENT), "task returned " + std::to_string(ENOENT + 1000)}));
}

template <std::size_t N>
Thread big_frame() {
  volatile char pad[N];
  pad[0] = 0;
  co_await yield();
  pad[N - 1] = pad[0];
}

Finally record_error(Error* seen) {
  for (;;) {
    *seen = error();
    co_await lower();
  }
}

Thread spawns_too_big(Error* seen, ThreadRef* child) {
  co_await finally(record_error(seen));
  *child = co_await spawn(big_frame<64 * 1024>());
}

TEST(RaiseTest, SpawnThatDoesNotFitRaisesEnomemWithNeededPages) {
  TestProcess p(8);  // 32 KiB budget; the child needs more than 64 KiB
  Error seen;
  ThreadRef child = reinterpret_cast<ThreadRef>(1);
  p->start(spawns_too_big, &seen, &child);
  EXPECT_EQ(p->dispatch(), 0u);
  EXPECT_EQ(seen.code, ENOMEM);
  EXPECT_EQ(child, nullptr);
  EXPECT_GE(seen.needed_pages, 17u);
  EXPECT_NE(std::string(seen.where.file_name()).find("raise_test.cc"), std::string::npos);

  // The reported page count is exact: a heap of that many pages runs the same thread.
  TestProcess enough(seen.needed_pages);
  Error none;
  child = nullptr;
  enough->start(spawns_too_big, &none, &child);
  enough->dispatch();
  EXPECT_EQ(none.code, 0);
  EXPECT_NE(child, nullptr);
}

Thread paused_forever(Log* log, Error* seen) {
  co_await finally(record_error(seen));
  co_await pause();
  log->push_back("faulted frame resumed");  // must never happen
}

TEST(RaiseTest, TrapRaisedIntoAThreadRunsTheHandlerButNeverResumesTheFrame) {
  TestProcess p;
  Log log;
  Error seen;
  ThreadRef t = p->start(paused_forever, &log, &seen);
  p->dispatch();
  t->raise_in(Error{.code = EFAULT, .signo = SIGSEGV, .address = 0x10});
  EXPECT_EQ(p->dispatch(), 0u);  // handler ran and lowered: the thread ended instead
  EXPECT_EQ(seen.code, EFAULT);
  EXPECT_EQ(seen.signo, SIGSEGV);
  EXPECT_TRUE(log.empty());
}

TEST(RaiseTest, TimeoutStyleRaiseIntoABlockedThreadLowersBackToIt) {
  TestProcess p;
  Log log;
  Error seen;
  ThreadRef t = p->start(paused_forever, &log, &seen);
  p->dispatch();
  t->raise_in(Error{.code = ETIMEDOUT});
  EXPECT_EQ(p->dispatch(), 0u);
  EXPECT_EQ(seen.code, ETIMEDOUT);
  EXPECT_EQ(log, (Log{"faulted frame resumed"}));  // not a trap: lower resumes the waiter
}

}  // namespace
}  // namespace mnv
