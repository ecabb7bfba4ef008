// Budget leases (redis/budget_lease.h) against a real redis-server: grants never exceed what is
// left, give-backs are capped at the lease and end it, bad amounts are error replies, the
// scripts survive SCRIPT FLUSH, and three bidders leasing concurrently (three connections,
// pipelined, interleaved) are granted exactly the budget and no more.
#include <gtest/gtest.h>

#include <string>

#include "mem/heap_pool.h"
#include "redis/budget_lease.h"
#include "runtime/kernel.h"
#include "tests/redis_server.h"

namespace mnv::redis {
namespace {

using mnv::testing::RedisServer;

struct Ctx {
  sockaddr_in addr{};
  RedisServer* server = nullptr;
  bool finished = false;
};

Thread single_bidder(Ctx* x) {
  Connection c;
  c.set_address(reinterpret_cast<const sockaddr*>(&x->addr), sizeof x->addr);
  BudgetLeases b;
  std::int64_t got = -1, left = -1;
  EXPECT_EQ(co_await b.reset(c, "c42", 1000), 0) << b.why();
  // open() sets a budget only where Redis holds none (the first bidder of a fleet sets it).
  bool created = true;
  EXPECT_EQ(co_await b.open(c, "c42", "bidder-a", 999'999, &created), 0) << b.why();
  EXPECT_FALSE(created);
  EXPECT_EQ(co_await b.left(c, "c42", &left), 0);
  EXPECT_EQ(left, 1000);
  EXPECT_EQ(co_await b.open(c, "c43-new", "bidder-a", 77, &created), 0) << b.why();
  EXPECT_TRUE(created);
  EXPECT_EQ(co_await b.left(c, "c43-new", &left), 0);
  EXPECT_EQ(left, 77);
  EXPECT_EQ(co_await b.lease(c, "c42", "bidder-a", 300, &got), 0) << b.why();
  EXPECT_EQ(got, 300);
  EXPECT_EQ(co_await b.lease(c, "c42", "bidder-b", 800, &got), 0);
  EXPECT_EQ(got, 700);  // all that is left
  EXPECT_EQ(co_await b.lease(c, "c42", "bidder-a", 10, &got), 0);
  EXPECT_EQ(got, 0);
  EXPECT_EQ(co_await b.left(c, "c42", &left), 0);
  EXPECT_EQ(left, 0);
  // a spent 200 of its 300: gives back 100.
  EXPECT_EQ(co_await b.give_back(c, "c42", "bidder-a", 100, &got), 0);
  EXPECT_EQ(got, 100);
  // b claims to give back more than it leased: capped at its lease.
  EXPECT_EQ(co_await b.give_back(c, "c42", "bidder-b", 5000, &got), 0);
  EXPECT_EQ(got, 700);
  // Each give-back ended its lease: a second one returns nothing.
  EXPECT_EQ(co_await b.give_back(c, "c42", "bidder-b", 700, &got), 0);
  EXPECT_EQ(got, 0);
  EXPECT_EQ(co_await b.left(c, "c42", &left), 0);
  EXPECT_EQ(left, 800);  // 1000 - the 200 a spent
  // Bad amounts are refused by the script, named.
  EXPECT_EQ(co_await b.lease(c, "c42", "bidder-a", -5, &got), EPROTO);
  EXPECT_NE(std::string(b.why()).find("non-negative integer"), std::string::npos) << b.why();
  // The server forgets its scripts: EVALSHA loads them again.
  Reply r;
  EXPECT_EQ(co_await c.call_args(&r, "SCRIPT", "FLUSH"), 0);
  EXPECT_EQ(co_await b.lease(c, "c42", "bidder-c", 50, &got), 0) << b.why();
  EXPECT_EQ(got, 50);
  // A killed bidder never gives back: its lease stays spent, never re-granted.
  EXPECT_EQ(co_await b.left(c, "c42", &left), 0);
  EXPECT_EQ(left, 750);
  // Redis gone: a clear error, no grant.
  x->server->stop();
  got = -1;
  EXPECT_NE(co_await b.lease(c, "c42", "bidder-a", 10, &got), 0);
  EXPECT_EQ(got, -1);
  x->finished = true;
}

// Redis loses its data (FLUSHALL here; tests/rtb_fleet_test.sh restarts a real one without
// persistence): a holder's next step marks the campaign lost instead of setting a budget again,
// bidders that open it later find it lost too, a give-back creates nothing, and only the
// operator's re-seed (SET left, DEL lost) brings it back.
Thread lost_budget(Ctx* x) {
  Connection c;
  c.set_address(reinterpret_cast<const sockaddr*>(&x->addr), sizeof x->addr);
  BudgetLeases b;
  bool created = false;
  std::int64_t got = -1, left = -1;
  EXPECT_EQ(co_await b.open(c, "c44", "bidder-a", 1000, &created), 0) << b.why();
  EXPECT_TRUE(created);  // (an empty Redis, a fresh fleet: the first opener sets the budget)
  EXPECT_EQ(co_await b.check(c, "c44", "bidder-a"), 0) << b.why();
  EXPECT_EQ(co_await b.lease(c, "c44", "bidder-a", 300, &got), 0) << b.why();
  EXPECT_EQ(got, 300);
  EXPECT_EQ(x->server->cli("FLUSHALL"), "OK");
  got = -1;
  EXPECT_EQ(co_await b.lease(c, "c44", "bidder-a", 300, &got), ENODATA);
  EXPECT_EQ(got, -1);
  EXPECT_NE(std::string(b.why()).find("Redis lost this campaign's budget"), std::string::npos) << b.why();
  EXPECT_NE(std::string(b.why()).find("DEL {budget:c44}:lost"), std::string::npos) << b.why();
  EXPECT_EQ(x->server->cli("GET {budget:c44}:lost"), "budget lost by Redis: found by bidder-a");
  // A bidder started now does not set the budget again; a give-back does not create it.
  EXPECT_EQ(co_await b.open(c, "c44", "bidder-new", 1000, &created), ENODATA);
  EXPECT_EQ(co_await b.give_back(c, "c44", "bidder-a", 200, &got), ENODATA);
  EXPECT_EQ(x->server->cli("EXISTS {budget:c44}:left"), "0");
  EXPECT_EQ(co_await b.check(c, "c44", "bidder-a"), ENODATA);
  // The operator's re-seed: what is left, then the mark deleted (in the other order the next
  // step marks it lost again, since `left` is still gone).
  EXPECT_EQ(x->server->cli("DEL {budget:c44}:lost"), "1");
  EXPECT_EQ(co_await b.check(c, "c44", "bidder-b"), ENODATA);
  EXPECT_EQ(x->server->cli("GET {budget:c44}:lost"), "budget lost by Redis: found by bidder-b");
  EXPECT_EQ(x->server->cli("SET {budget:c44}:left 700"), "OK");
  EXPECT_EQ(x->server->cli("DEL {budget:c44}:lost"), "1");
  EXPECT_EQ(co_await b.check(c, "c44", "bidder-a"), 0) << b.why();
  EXPECT_EQ(co_await b.lease(c, "c44", "bidder-a", 300, &got), 0) << b.why();
  EXPECT_EQ(got, 300);
  EXPECT_EQ(co_await b.left(c, "c44", &left), 0);
  EXPECT_EQ(left, 400);
  // Another campaign that was never opened: a fresh open still sets it.
  EXPECT_EQ(co_await b.open(c, "c45", "bidder-a", 5, &created), 0) << b.why();
  EXPECT_TRUE(created);
  x->finished = true;
}

// One of three bidders, each its own micro-process and connection, leasing 7 at a time until
// nothing is left: while one waits for its reply the others run, so the server sees the three
// interleaved.
Thread bidder(Ctx* x, int id, std::int64_t* granted, int* calls) {
  Connection c;
  c.set_address(reinterpret_cast<const sockaddr*>(&x->addr), sizeof x->addr);
  BudgetLeases b;
  const char* holder[] = {"b0", "b1", "b2"};
  for (;;) {
    std::int64_t got = 0;
    int e = co_await b.lease(c, "shared", holder[id], 7, &got);
    EXPECT_EQ(e, 0) << b.why();
    if (e != 0 || got == 0) break;
    EXPECT_TRUE(got == 7 || got == 1000 % 7) << got;
    *granted += got;
    ++*calls;
  }
}

template <typename F>
void run(F fn, Ctx* x) {
  KernelConfig kc;
  kc.max_fds = 64;
  kc.max_processes = 4;
  kc.exit_when_idle = true;
  auto k = Kernel::create(kc);
  ASSERT_NE(k, nullptr);
  HeapPool pool(64, 2);
  k->start(pool, fn, x);
  k->run();
  EXPECT_TRUE(x->finished);
}

TEST(RedisBudgetLeaseTest, GrantsAtMostWhatIsLeftAndGivesBackAtMostTheLease) {
  RedisServer server;
  ASSERT_TRUE(server.ok());
  Ctx x;
  x.addr = server.addr();
  x.server = &server;
  run(single_bidder, &x);
}

Thread set_budget(Ctx* x) {
  Connection c;
  c.set_address(reinterpret_cast<const sockaddr*>(&x->addr), sizeof x->addr);
  BudgetLeases b;
  EXPECT_EQ(co_await b.reset(c, "shared", 1000), 0) << b.why();
  x->finished = true;
}

TEST(RedisBudgetLeaseTest, ConcurrentBiddersAreGrantedExactlyTheBudget) {
  RedisServer server;
  ASSERT_TRUE(server.ok());
  Ctx x;
  x.addr = server.addr();
  x.server = &server;
  run(set_budget, &x);
  KernelConfig kc;
  kc.max_fds = 64;
  kc.max_processes = 8;
  kc.exit_when_idle = true;
  auto k = Kernel::create(kc);
  ASSERT_NE(k, nullptr);
  HeapPool pool(32, 3);
  std::int64_t granted[3] = {0, 0, 0};
  int calls[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i) k->start(pool, bidder, &x, i, &granted[i], &calls[i]);
  k->run();
  EXPECT_EQ(granted[0] + granted[1] + granted[2], 1000);
  EXPECT_EQ(calls[0] + calls[1] + calls[2], 143);  // 142 x 7 + 6
  for (int i = 0; i < 3; ++i) EXPECT_GT(calls[i], 10) << "bidder " << i << " was starved: not interleaved";
  EXPECT_EQ(server.cli("GET {budget:shared}:left"), "0");
}

TEST(RedisBudgetLeaseTest, ALostBudgetIsMarkedAndNeverSetAgainButByTheOperator) {
  RedisServer server;
  ASSERT_TRUE(server.ok());
  Ctx x;
  x.addr = server.addr();
  x.server = &server;
  run(lost_budget, &x);
}

}  // namespace
}  // namespace mnv::redis
