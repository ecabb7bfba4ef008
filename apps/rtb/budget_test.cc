// Tests of apps/rtb/budget.h: the ledger's single-shard rules (reserve, bill, win then bill,
// loss, audit, replay, above-price, expiry, open() with a new total), and the overspend bound
// over 1,000,000 bids on two shards, as threads and as processes: shard 0 bids on four
// campaigns, shard 1 on two, so shard 0 must borrow shard 1's unused slices through the
// mailboxes; many notices are settled from the other shard (a cross-shard call), with
// replays, over-price clearing, audits, losses and bids that never hear back.
#include "apps/rtb/budget.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <memory>

#include "mem/heap_pool.h"
#include "net/io.h"
#include "runtime/clock.h"
#include "shard/cross_call.h"
#include "shard/shard.h"
#include "shard/shared_memory.h"

namespace mnv::rtb {
namespace {

using Notice = ShardBudget::Notice;

TEST(BudgetTest, ASingleShardReservesBillsReleasesAndRefuses) {
  BudgetBook book(1, 8);
  ShardBudget b(&book, 0, {.max_reservations = 4, .lifetime_ns = 1'000'000'000});
  std::string error;
  int slot = b.open(7, 10'000, &error);
  ASSERT_GE(slot, 0) << error;
  const BudgetSlice& s = book.slice(0, static_cast<std::size_t>(slot));
  std::int64_t t = monotonic_ns();

  std::uint64_t a = b.reserve(slot, 3'000, t);
  ASSERT_NE(a, 0u);
  EXPECT_EQ(s.available.load(), 7'000);
  EXPECT_EQ(s.reserved.load(), 3'000);
  EXPECT_EQ(b.settle(a, Notice::kBill, 3'001, false, t), Settled::kAbovePrice);  // above the bid
  EXPECT_EQ(b.settle(a, Notice::kBill, -1, false, t), Settled::kMarked);         // an audit
  EXPECT_EQ(s.reserved.load(), 3'000);
  EXPECT_EQ(b.settle(a, Notice::kWin, 2'000, false, t), Settled::kMarked);  // billing comes later
  EXPECT_EQ(b.settle(a, Notice::kWin, 2'000, false, t), Settled::kReplayed);
  EXPECT_EQ(b.settle(a, Notice::kLoss, 0, false, t), Settled::kReplayed);  // the win stands
  EXPECT_EQ(b.settle(a, Notice::kBill, 2'000, false, t), Settled::kDebited);
  EXPECT_EQ(s.spent.load(), 2'000);
  EXPECT_EQ(s.reserved.load(), 0);
  EXPECT_EQ(s.available.load(), 8'000);
  EXPECT_EQ(b.settle(a, Notice::kBill, 2'000, false, t), Settled::kReplayed);
  EXPECT_EQ(s.spent.load(), 2'000);

  std::uint64_t l = b.reserve(slot, 5'000, t);
  EXPECT_EQ(b.settle(l, Notice::kLoss, 0, false, t), Settled::kReleased);
  EXPECT_EQ(b.settle(l, Notice::kLoss, 0, false, t), Settled::kReplayed);
  EXPECT_EQ(s.available.load(), 8'000);
  std::uint64_t w = b.reserve(slot, 5'000, t);
  EXPECT_EQ(b.settle(w, Notice::kWin, 4'000, true, t), Settled::kDebited);  // billed at the win
  EXPECT_EQ(s.spent.load(), 6'000);
  EXPECT_EQ(b.reserve(slot, 4'001, t), 0u);  // 4'000 left
  EXPECT_EQ(b.settle(w + 1000, Notice::kBill, 1, false, t), Settled::kExpired);  // never made

  // The ring holds 4: a, l, w, and one more; then it is full until the first ones expire.
  std::uint64_t x = b.reserve(slot, 1'000, t);
  ASSERT_NE(x, 0u);
  EXPECT_EQ(b.reserve(slot, 1'000, t), 0u);
  EXPECT_EQ(b.refused_full(), 1u);
  // A lifetime later: x's 1'000 comes back, its notice is refused as expired, and bids go on.
  std::int64_t later = t + 1'000'000'001 + 1'000'000;
  EXPECT_EQ(b.settle(x, Notice::kBill, 1'000, false, later), Settled::kExpired);
  EXPECT_EQ(b.live_reservations(), 0u);
  EXPECT_EQ(s.available.load(), 4'000);
  EXPECT_EQ(s.reserved.load(), 0);
  EXPECT_NE(b.reserve(slot, 1'000, later), 0u);

  // A new total: this shard's share changes by the difference; a cut larger than what is left
  // is taken as far as it goes and the rest counted.
  EXPECT_EQ(b.open(7, 20'000, &error), slot);
  EXPECT_EQ(s.available.load(), 13'000);
  EXPECT_EQ(b.open(7, 2'000, &error), slot);
  EXPECT_EQ(s.available.load(), 0);
  EXPECT_EQ(s.unreturned.load(), 5'000);
  EXPECT_EQ(book.in_hand(static_cast<std::size_t>(slot)), 2'000);  // the new total, all accounted
}

TEST(BudgetTest, TheBookRefusesACampaignPastItsCapacityByName) {
  BudgetBook book(2, 2);
  ShardBudget b(&book, 1, {});
  std::string error;
  EXPECT_GE(b.open(1, 100, &error), 0);
  EXPECT_GE(b.open(2, 100, &error), 0);
  EXPECT_EQ(b.open(3, 100, &error), -1);
  EXPECT_NE(error.find("campaign 3"), std::string::npos) << error;
  EXPECT_NE(error.find("max_campaigns"), std::string::npos) << error;
  // Shard 1's share of an odd total: the remainder goes to shard 0.
  EXPECT_EQ(book.slice(1, static_cast<std::size_t>(b.open(1, 101, &error))).available.load(), 50);
}

// ---- The bound across two shards. ----

constexpr int kCampaigns = 4;
constexpr std::uint64_t kIds[kCampaigns] = {101, 102, 103, 104};
constexpr Micros kBudget = 100'000'000;  // $100 each
constexpr int kBidsPerShard = 500'000;
constexpr std::uint32_t kRemoteNotice = 40;  // test post: a notice for the other shard to settle

struct Counters {
  std::atomic<std::uint64_t> bids{0}, no_budget{0}, wrong{0}, replays{0}, replays_refused{0},
      remote_posted{0}, remote_done{0}, remote_dropped{0}, late{0};
  std::atomic<bool> done[2]{false, false};
};

struct RemoteNotice {
  std::uint64_t seq;
  Micros cost;
  std::uint8_t kind;
  std::uint8_t expect;  // Settled
  std::uint8_t replay;  // settle it twice: the second must be refused
};

// Each shard's own state, in its own process (threads: both in this one, by index).
struct Local {
  std::unique_ptr<ShardBudget> budget;
  int slots[kCampaigns];
  RemoteNotice inbox[4096];
  std::size_t head = 0, tail = 0;
};
Local g_local[2];

void on_remote(const ShardMessage& m, void* ctx) {
  Local& l = g_local[Shard::current()->index()];
  RemoteNotice n;
  std::memcpy(&n, m.payload, sizeof n);
  if (l.head - l.tail == std::size(l.inbox)) {  // (the sender's credit keeps it from happening)
    ++static_cast<Counters*>(ctx)->remote_dropped;
    return;
  }
  l.inbox[l.head++ % std::size(l.inbox)] = n;
}

struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

void check(Settled got, Settled want, Counters* c) {
  if (got != want) ++c->wrong;
}

Task<> drain(std::size_t me, Counters* c) {
  Local& l = g_local[me];
  while (l.tail != l.head) {
    RemoteNotice n = l.inbox[l.tail++ % std::size(l.inbox)];
    ShardBudget::SettleRequest r{n.seq, n.cost, n.kind, 0};
    std::size_t owner = 1 - me;
    ShardMessage reply = co_await cross_call(owner, kBudgetSettle, &r, sizeof r, 10'000'000'000);
    Settled got = static_cast<Settled>(reply.payload[0]);
    if (got == Settled::kExpired) {
      ++c->late;  // (under a sanitizer a notice can wait past its lifetime: refused, not debited)
    } else {
      check(got, static_cast<Settled>(n.expect), c);
    }
    if (n.replay && got != Settled::kExpired) {
      ++c->replays;
      reply = co_await cross_call(owner, kBudgetSettle, &r, sizeof r, 10'000'000'000);
      Settled again = static_cast<Settled>(reply.payload[0]);
      if (again == Settled::kReplayed || again == Settled::kExpired) ++c->replays_refused;
    }
    ++c->remote_done;
  }
}

Thread driver(std::size_t me, Counters* c) {
  Local& l = g_local[me];
  ShardBudget& b = *l.budget;
  Rng rng{0x9E3779B97F4A7C15ull * (me + 1)};
  int campaigns = me == 0 ? kCampaigns : 2;
  for (int i = 0; i < kBidsPerShard; ++i) {
    std::int64_t now = monotonic_ns();
    b.expire(now);
    int slot = l.slots[rng.next() % static_cast<std::uint64_t>(campaigns)];
    Micros cost = impression_cost(500'000 + static_cast<Micros>(rng.next() % 4'500'000));
    std::uint64_t seq = b.reserve(slot, cost, now);
    ++c->bids;
    if (seq == 0) {
      ++c->no_budget;
    } else {
      std::uint64_t fate = rng.next() % 100;
      RemoteNotice n{seq, 0, 0, 0, 0};
      bool send = true;
      if (fate < 55) {
        n.kind = static_cast<std::uint8_t>(Notice::kBill);
        n.cost = cost * static_cast<Micros>(50 + rng.next() % 51) / 100;
        n.expect = static_cast<std::uint8_t>(Settled::kDebited);
        n.replay = rng.next() % 20 == 0;
      } else if (fate < 60) {
        // A clearing price above the bid: refused; the bid then expires unbilled.
        n.kind = static_cast<std::uint8_t>(Notice::kBill);
        n.cost = cost + 1;
        n.expect = static_cast<std::uint8_t>(Settled::kAbovePrice);
      } else if (fate < 75) {
        n.kind = static_cast<std::uint8_t>(Notice::kLoss);
        n.expect = static_cast<std::uint8_t>(Settled::kReleased);
      } else if (fate < 80) {
        n.kind = static_cast<std::uint8_t>(Notice::kBill);
        n.cost = -1;  // an audit
        n.expect = static_cast<std::uint8_t>(Settled::kMarked);
      } else {
        send = false;  // never heard of again: it expires
      }
      // Half the notices go to the other shard, as long as fewer than 64 of them wait there (each settles well within its lifetime).
      if (send && rng.next() % 2 == 0 && c->remote_posted - c->remote_done - c->remote_dropped < 64) {
        ++c->remote_posted;
        if (!Shard::current()->post(1 - me, kRemoteNotice, &n, sizeof n)) ++c->remote_dropped;
      } else if (send) {
        Settled got = b.settle(n.seq, static_cast<Notice>(n.kind), n.cost, false, now);
        check(got, static_cast<Settled>(n.expect), c);
        if (n.replay) {
          ++c->replays;
          if (b.settle(n.seq, static_cast<Notice>(n.kind), n.cost, false, now) == Settled::kReplayed) {
            ++c->replays_refused;
          }
        }
      }
    }
    if (i % 16 == 0) {
      co_await drain(me, c);
      co_await sleep_for(1'000);  // a loop turn: the mailboxes are read
    }
  }
  c->done[me] = true;
  // Settle what the other shard still sends, until both are done and every notice was handled.
  while (!(c->done[0] && c->done[1] && c->remote_done + c->remote_dropped == c->remote_posted)) {
    co_await drain(me, c);
    co_await sleep_for(1'000'000);
  }
  co_await sleep_for(600'000'000);  // past every lifetime: what is left expires
  b.expire(monotonic_ns());
  if (me == 0) {
    co_await sleep_for(10'000'000);  // (shard 1 expires too)
    Shard::current()->set().request_stop();
  }
}

class BudgetBoundTest : public ::testing::TestWithParam<ShardMode> {};

TEST_P(BudgetBoundTest, SpendNeverPassesTheBudgetOverAMillionBidsOnTwoShards) {
  std::string error;
  auto topo = Topology::discover(&error);
  ASSERT_NE(topo, nullptr) << error;
  ShardSetOptions o;
  std::vector<int> cpus;
  for (int cpu : topo->allowed()) cpus.push_back(cpu);
  if (cpus.size() < 2) GTEST_SKIP() << "needs 2 CPUs";
  o.affinity.shards = 2;
  o.affinity.cpus.assign(cpus.begin(), cpus.begin() + 2);
  o.affinity.poller = PollerKind::kIoUring;
  o.affinity.shard_mode = GetParam();
  o.affinity.grace_ms = 100;
  o.max_run_ms = 0;
  BudgetBook book(2, 64);
  HeapPool pool0(16, 4), pool1(16, 4);  // one per shard: a pool belongs to one thread
  SharedObject<Counters> c;
  o.init = [&](Shard& s, std::string* err) {
    Local& l = g_local[s.index()];
    l.budget = std::make_unique<ShardBudget>(&book, s.index(),
                                             ShardBudget::Options{.max_reservations = 1 << 18, .lifetime_ns = 500'000'000});
    l.budget->attach(s);
    for (int k = 0; k < kCampaigns; ++k) {
      l.slots[k] = l.budget->open(kIds[k], kBudget, err);
      if (l.slots[k] < 0) return false;
    }
    s.on_post(kRemoteNotice, on_remote, c.get());
    return s.kernel().start(s.index() == 0 ? pool0 : pool1, driver, s.index(), c.get()) != nullptr;
  };
  o.fini = [](Shard& s) { g_local[s.index()].budget.reset(); };
  auto set = ShardSet::start(*topo, o, &error);
  ASSERT_NE(set, nullptr) << error;
  EXPECT_EQ(set->wait(), 0);

  EXPECT_EQ(c->bids.load(), 2u * kBidsPerShard);
  EXPECT_EQ(c->wrong.load(), 0u);
  EXPECT_EQ(c->remote_dropped.load(), 0u);
  EXPECT_LT(c->late.load(), c->remote_done.load() / 100);
  EXPECT_GT(c->remote_done.load(), 1'000u);  // notices settled from the other shard
  EXPECT_EQ(c->replays_refused.load(), c->replays.load());
  EXPECT_GT(c->replays.load(), 5'000u);
  Micros total = 0;
  for (std::uint64_t id : kIds) {
    std::size_t slot = static_cast<std::size_t>(book.slot_of(id));
    Micros spent = book.spent(slot);
    total += spent;
    // THE BOUND (budget.h): spend ≤ budget + 0, and every micro-dollar is accounted for.
    EXPECT_LE(spent, kBudget) << "campaign " << id;
    EXPECT_EQ(book.in_hand(slot), kBudget) << "campaign " << id;
    // The budget was used (what bids that expired at the end held comes back too late to spend): shard 1's unused slices of 103 and 104 were lent to shard 0.
    EXPECT_GE(spent, kBudget * 80 / 100) << "campaign " << id;
    EXPECT_EQ(book.slice(0, slot).reserved.load() + book.slice(1, slot).reserved.load(), 0) << "campaign " << id;
    std::printf("campaign %llu: spent %lld of %lld; lent 0->1 %lld, 1->0 %lld; asks %llu + %llu\n",
                static_cast<unsigned long long>(id), static_cast<long long>(spent), static_cast<long long>(kBudget),
                static_cast<long long>(book.slice(0, slot).lent.load()),
                static_cast<long long>(book.slice(1, slot).lent.load()),
                static_cast<unsigned long long>(book.slice(0, slot).asks.load()),
                static_cast<unsigned long long>(book.slice(1, slot).asks.load()));
  }
  EXPECT_GT(book.slice(1, static_cast<std::size_t>(book.slot_of(103))).lent.load(), kBudget / 2 * 9 / 10);
  EXPECT_GT(c->no_budget.load(), 0u);  // demand passed the budgets
  std::printf("bids %llu, refused for budget %llu, total spent %lld\n",
              static_cast<unsigned long long>(c->bids.load()), static_cast<unsigned long long>(c->no_budget.load()),
              static_cast<long long>(total));
}

INSTANTIATE_TEST_SUITE_P(Modes, BudgetBoundTest, ::testing::Values(ShardMode::kThreads, ShardMode::kProcesses),
                         [](const auto& i) { return std::string(shard_mode_name(i.param)); });

}  // namespace
}  // namespace mnv::rtb
