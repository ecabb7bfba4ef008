// Tests of apps/rtb/freq_cap.h: the user key's fallbacks, the table's limit, windows, expiry and
// evictions; and across two shards (threads): a user owned by the other shard is capped after
// the impressions its owner recorded, a user owned here is answered without a message, and an
// owner too slow for the deadline gives ETIMEDOUT in time (raised nothing) — then answers again.
#include "apps/rtb/freq_cap.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>

#include "apps/rtb/bid_request.h"
#include "mem/heap_pool.h"
#include "net/io.h"
#include "runtime/clock.h"
#include "shard/shard.h"
#include "shard/shared_memory.h"

namespace mnv::rtb {
namespace {

TEST(FreqCapTest, TheUserKeyFallsBackFromIdToBuyeruidToIfa) {
  BidRequest r;
  EXPECT_EQ(user_key(r), 0u);
  r.device.ifa = "ifa-1";
  std::uint64_t ifa = user_key(r);
  EXPECT_NE(ifa, 0u);
  r.user.buyeruid = "ifa-1";  // the same text as another kind of id is another user
  std::uint64_t buyer = user_key(r);
  EXPECT_NE(buyer, ifa);
  r.user.id = "u-1";
  EXPECT_NE(user_key(r), buyer);
  BidRequest same;
  same.user.id = "u-1";
  EXPECT_EQ(user_key(same), user_key(r));
}

TEST(FreqCapTest, TheTableCountsWithinAWindowAndForgetsAfterIt) {
  CapTable t(1 << 10);
  EXPECT_TRUE(t.allows(7, 1, 2, 1'000));
  t.record(7, 1, 60, 1'000);
  EXPECT_TRUE(t.allows(7, 1, 2, 1'000));
  t.record(7, 1, 60, 2'000);
  EXPECT_FALSE(t.allows(7, 1, 2, 2'000));   // 2 of 2
  EXPECT_TRUE(t.allows(7, 2, 2, 2'000));    // another campaign
  EXPECT_TRUE(t.allows(8, 1, 2, 2'000));    // another user
  EXPECT_FALSE(t.allows(7, 1, 2, 60'999));  // the window began at 1'000
  EXPECT_TRUE(t.allows(7, 1, 2, 61'000));   // and has ended
  t.record(7, 1, 60, 61'000);
  EXPECT_TRUE(t.allows(7, 1, 2, 61'000));  // a new window, 1 of 2
  EXPECT_FALSE(t.allows(7, 1, 0, 61'000));  // a limit of 0 allows nothing
  EXPECT_EQ(t.evictions(), 0u);
}

TEST(FreqCapTest, AFullTableEvictsTheEntryWhoseWindowEndsFirst) {
  CapTable t(8);  // one bucket
  for (std::uint64_t u = 1; u <= 8; ++u) t.record(u, 1, static_cast<std::uint32_t>(100 + u), 0);
  EXPECT_EQ(t.evictions(), 0u);
  for (std::uint64_t u = 1; u <= 8; ++u) EXPECT_FALSE(t.allows(u, 1, 1, 0));
  t.record(9, 1, 500, 0);  // full: user 1's window (101 s) ends first
  EXPECT_EQ(t.evictions(), 1u);
  EXPECT_TRUE(t.allows(1, 1, 1, 0));
  EXPECT_FALSE(t.allows(9, 1, 1, 0));
  EXPECT_FALSE(t.allows(2, 1, 1, 0));
  t.record(10, 1, 10, 200'000);  // every other window has ended by then: no eviction
  EXPECT_EQ(t.evictions(), 1u);
}

// The table as the owner's cache in front of Redis ([rtb] caps = "redis"): a count is fresh for
// fresh_ms after the Redis command that gave it was sent; fills arriving out of order keep the
// later one; a local count (Redis failed) is known but never fresh.
TEST(FreqCapTest, ACachedCountFromRedisIsFreshForItsBoundAndTheLatestFillWins) {
  CapTable t(1 << 10);
  CapTable::Look l = t.look(7, 1, 3, 1'000, 100);
  EXPECT_TRUE(l.allowed);
  EXPECT_FALSE(l.known);
  EXPECT_FALSE(l.fresh);
  t.fill(7, 1, 2, 60, 1'000, 1'000);  // Redis: 2, asked at 1'000
  l = t.look(7, 1, 3, 1'050, 100);
  EXPECT_TRUE(l.allowed && l.known && l.fresh);
  l = t.look(7, 1, 3, 1'100, 100);  // 100 ms later: known, no longer fresh
  EXPECT_TRUE(l.allowed && l.known);
  EXPECT_FALSE(l.fresh);
  EXPECT_FALSE(t.look(7, 1, 3, 1'050, 0).fresh);  // a bound of 0: never fresh
  t.fill(7, 1, 3, 60, 1'200, 1'210);  // a later answer: 3 of 3
  l = t.look(7, 1, 3, 1'210, 100);
  EXPECT_FALSE(l.allowed);
  EXPECT_TRUE(l.fresh);
  t.fill(7, 1, 1, 60, 1'150, 1'220);  // an older answer arriving late is ignored
  EXPECT_FALSE(t.look(7, 1, 3, 1'220, 100).allowed);
  t.fill(7, 1, 0, 60, 1'300, 1'300);  // Redis forgot it (its key expired): 0
  EXPECT_TRUE(t.look(7, 1, 3, 1'300, 100).allowed);
  // A local count (a win Redis could not count) adds to the cached one, keeps its sync time.
  t.record(7, 1, 60, 1'310);
  t.record(7, 1, 60, 1'320);
  t.record(7, 1, 60, 1'330);
  l = t.look(7, 1, 3, 1'330, 100);
  EXPECT_FALSE(l.allowed);
  EXPECT_TRUE(l.known);
  // Only local counts: known, not fresh (a check reads Redis).
  t.record(8, 1, 60, 1'000);
  l = t.look(8, 1, 3, 1'000, 100'000);
  EXPECT_TRUE(l.known);
  EXPECT_FALSE(l.fresh);
  // A fill opens the window when none runs: it ends window_s after the fill.
  t.fill(9, 2, 5, 10, 2'000, 2'000);
  EXPECT_FALSE(t.look(9, 2, 5, 11'999, 100'000).allowed);
  EXPECT_TRUE(t.look(9, 2, 5, 12'000, 100'000).allowed);
  EXPECT_FALSE(t.look(9, 2, 5, 12'000, 100'000).known);
  EXPECT_EQ(t.evictions(), 0u);
}

TEST(FreqCapTest, TheOwnersAnswerSaysPerItemAllowedKnownAndFresh) {
  FreqCaps caps(1 << 10, 100);
  FreqCaps::Query q{};
  q.user = 5;
  for (auto& i : q.items) i.slot = ~0u;
  q.items[0] = {1, 2};
  q.items[1] = {2, 2};
  q.items[2] = {3, 2};
  caps.fill(FreqCaps::Fill{5, 1, 60, 2, 1'000}, 1'000);  // capped, fresh
  caps.record(FreqCaps::Record{5, 2, 60}, 1'000);         // 1 of 2, local only
  FreqCaps::Seen s = caps.check(q, 1'010);
  EXPECT_EQ(s.allowed, 0b110u);
  EXPECT_EQ(s.known, 0b011u);
  EXPECT_EQ(s.fresh, 0b001u);
  EXPECT_EQ(caps.check(q, 1'100).fresh, 0u);
}

// ---- Across two shards. ----

struct Report {
  std::atomic<int> remote_before{-1}, remote_after{-1}, local{-1}, timeout_error{-1}, timeout_ms{-1},
      after_slow{-1};
  std::atomic<bool> done{false};
};

FreqCaps* g_caps[2];

// A user key owned by shard `owner` of 2.
std::uint64_t user_on(std::size_t owner) { return 1000 + owner; }

FreqCaps::Query query(std::uint64_t user) {
  FreqCaps::Query q{};
  q.user = user;
  for (auto& i : q.items) i.slot = ~0u;
  q.items[0] = {3, 2};  // campaign slot 3, 2 impressions
  q.items[1] = {4, 5};
  return q;
}

Thread asker(Report* r) {
  FreqCaps& mine = *g_caps[0];
  std::int64_t second = 1'000'000'000;
  CapAnswer a = co_await ask_caps(mine, query(user_on(1)), monotonic_ns() + second);
  r->remote_before = a.error == 0 ? static_cast<int>(a.allowed) : -a.error;
  // Two impressions counted at the owner (a win notice's post), then asked again.
  FreqCaps::Record rec{user_on(1), 3, 3600};
  Shard::current()->post(1, kCapRecord, &rec, sizeof rec);
  Shard::current()->post(1, kCapRecord, &rec, sizeof rec);
  co_await sleep_for(1'000'000);  // (the posts go out at the end of this turn; the call below follows them)
  a = co_await ask_caps(mine, query(user_on(1)), monotonic_ns() + second);
  r->remote_after = a.error == 0 ? static_cast<int>(a.allowed) : -a.error;
  a = co_await ask_caps(mine, query(user_on(0)), monotonic_ns() + second);
  r->local = a.error == 0 ? static_cast<int>(a.allowed) : -a.error;
  // A slow owner: 300 ms per answer, against a 20 ms deadline.
  g_caps[1]->set_check_delay_ns(300'000'000);
  std::int64_t t0 = monotonic_ns();
  a = co_await ask_caps(mine, query(user_on(1)), t0 + 20'000'000);
  r->timeout_ms = static_cast<int>((monotonic_ns() - t0) / 1'000'000);
  r->timeout_error = a.error;
  co_await sleep_for(400'000'000);  // the slow answer comes back late and is dropped
  g_caps[1]->set_check_delay_ns(0);
  a = co_await ask_caps(mine, query(user_on(1)), monotonic_ns() + second);
  r->after_slow = a.error == 0 ? static_cast<int>(a.allowed) : -a.error;
  r->done = true;
  Shard::current()->set().request_stop();
}

TEST(FreqCapTest, ACrossShardCapIsAskedOfItsOwnerUnderTheDeadline) {
  std::string error;
  auto topo = Topology::discover(&error);
  ASSERT_NE(topo, nullptr) << error;
  std::vector<int> cpus;
  for (int cpu : topo->allowed()) cpus.push_back(cpu);
  if (cpus.size() < 2) GTEST_SKIP() << "needs 2 CPUs";
  ShardSetOptions o;
  o.affinity.shards = 2;
  o.affinity.cpus.assign(cpus.begin(), cpus.begin() + 2);
  o.affinity.poller = PollerKind::kIoUring;
  o.affinity.shard_mode = ShardMode::kThreads;
  o.affinity.grace_ms = 100;
  o.max_run_ms = 0;
  HeapPool pool(16, 2);
  Report r;
  FreqCaps c0(1 << 10), c1(1 << 10);
  g_caps[0] = &c0;
  g_caps[1] = &c1;
  o.init = [&](Shard& s, std::string*) {
    g_caps[s.index()]->attach(s);
    if (s.index() == 0) return s.kernel().start(pool, asker, &r) != nullptr;
    return true;
  };
  auto set = ShardSet::start(*topo, o, &error);
  ASSERT_NE(set, nullptr) << error;
  EXPECT_EQ(set->wait(), 0);
  ASSERT_TRUE(r.done);
  EXPECT_EQ(r.remote_before.load(), 0b11);
  EXPECT_EQ(r.remote_after.load(), 0b10);  // slot 3 reached its 2; slot 4 is at 0 of 5
  EXPECT_EQ(r.local.load(), 0b11);
  EXPECT_EQ(r.timeout_error.load(), ETIMEDOUT);
  EXPECT_GE(r.timeout_ms.load(), 19);
  EXPECT_LT(r.timeout_ms.load(), 250);  // in time, not when the owner (300 ms) got round to it
  EXPECT_EQ(r.after_slow.load(), 0b10);
}

}  // namespace
}  // namespace mnv::rtb
