// Unit tests for futures inside one process: spawn messages, request/respond round trips,
// FIFO ordering with several requesters, and EPIPE for a requester whose callee ends.
#include "runtime/future.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "runtime/exec.h"
#include "runtime/raise.h"
#include "runtime/test_process.h"

namespace mnv {
namespace {

Thread child_reads_message(int* got) {
  Message m = co_await listen();
  *got = *static_cast<int*>(m.data);
  EXPECT_EQ(m.from, nullptr);
}

Thread parent_spawns(int* got, std::vector<std::string>* log) {
  static int msg = 7;
  ThreadRef c = co_await spawn(child_reads_message(got), &msg);
  EXPECT_NE(c, nullptr);
  log->push_back("parent continues after spawn");
  EXPECT_EQ(*got, 0);  // spawn does not switch to the child
}

TEST(FutureTest, SpawnSendsAMessageAndTheParentKeepsRunning) {
  TestProcess p;
  int got = 0;
  std::vector<std::string> log;
  p->start(parent_spawns, &got, &log);
  EXPECT_EQ(p->dispatch(), 0u);
  EXPECT_EQ(got, 7);
  EXPECT_EQ(log.size(), 1u);
}

// Doubles each request; serves forever.
Thread doubler(std::vector<int>* served) {
  for (;;) {
    Message m = co_await listen();
    int* v = static_cast<int*>(m.data);
    served->push_back(*v);
    *v *= 2;
    respond(m.from, v);
  }
}

Thread requester(ThreadRef server, int value, std::vector<std::string>* log) {
  int v = value;
  log->push_back("request " + std::to_string(value));
  void* r = co_await request(server, &v);
  log->push_back("reply " + std::to_string(*static_cast<int*>(r)));
}

TEST(FutureTest, RequestRespondRoundTrip) {
  TestProcess p;
  std::vector<int> served;
  std::vector<std::string> log;
  ThreadRef server = p->start(doubler, &served);
  p->dispatch();
  EXPECT_TRUE(server->listening);
  p->start(requester, server, 21, &log);
  EXPECT_EQ(p->dispatch(), 1u);  // the server stays, listening
  EXPECT_EQ(log, (std::vector<std::string>{"request 21", "reply 42"}));
}

TEST(FutureTest, SeveralRequestersAreServedInRequestOrder) {
  TestProcess p;
  std::vector<int> served;
  std::vector<std::string> log;
  // The server is adopted but not played, so all three requests queue before it listens.
  Thread server_thread;
  {
    Process::Scope scope(p.process);
    server_thread = doubler(&served);
  }
  ThreadRef server = server_thread.get();
  p->adopt(server_thread.release());
  p->start(requester, server, 1, &log);
  p->start(requester, server, 2, &log);
  p->start(requester, server, 3, &log);
  p->dispatch();  // all three request; the server has not run yet
  EXPECT_FALSE(server->pending.empty());
  p->play(server);
  p->dispatch();
  EXPECT_EQ(served, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(log, (std::vector<std::string>{"request 1", "request 2", "request 3", "reply 2", "reply 4",
                                           "reply 6"}));
}

Thread listens_once_then_ends() {
  Message m = co_await listen();
  (void)m;  // ends without responding
}

Finally note_error(int* code) {
  *code = error().code;
  co_await lower();
}

Thread requester_with_handler(ThreadRef server, int* code, bool* after) {
  co_await finally(note_error(code));
  int v = 1;
  void* r = co_await request(server, &v);
  EXPECT_EQ(r, nullptr);
  *after = true;
}

TEST(FutureTest, CalleeEndingWithoutRespondingRaisesEpipeInTheRequester) {
  TestProcess p;
  int code = 0;
  bool after = false;
  ThreadRef server = p->start(listens_once_then_ends);
  p->dispatch();
  p->start(requester_with_handler, server, &code, &after);
  EXPECT_EQ(p->dispatch(), 0u);
  EXPECT_EQ(code, EPIPE);
  EXPECT_TRUE(after);  // lowered back after the request, which returned null
}

}  // namespace
}  // namespace mnv
