// Unit tests for runtime/timer_heap: ordering, cancel from any position, capacity, id reuse,
// checked against a reference model over a long random sequence.
#include "runtime/timer_heap.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

namespace mnv {
namespace {

TEST(TimerHeapTest, ExpiresInDeadlineOrder) {
  KernelHeap k(64);
  TimerHeap t(k, 16);
  ASSERT_TRUE(t.ok());
  for (int d : {50, 10, 40, 20, 30}) ASSERT_NE(t.add(d, d), TimerHeap::kNone);
  EXPECT_EQ(t.next_deadline(), 10);
  std::vector<std::uint64_t> fired;
  EXPECT_EQ(t.expire(35, [&](std::uint64_t c, TimerHeap::Id) { fired.push_back(c); }), 3u);
  EXPECT_EQ(fired, (std::vector<std::uint64_t>{10, 20, 30}));
  EXPECT_EQ(t.next_deadline(), 40);
}

TEST(TimerHeapTest, CancelAndCapacity) {
  KernelHeap k(64);
  TimerHeap t(k, 3);
  auto a = t.add(1, 1), b = t.add(2, 2), c = t.add(3, 3);
  EXPECT_EQ(t.add(4, 4), TimerHeap::kNone);  // full: refused, not grown
  t.cancel(a);
  t.cancel(c);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.next_deadline(), 2);
  t.cancel(a);  // cancelling twice is harmless
  auto d = t.add(0, 9);
  EXPECT_NE(d, TimerHeap::kNone);  // a freed slot is reused, under a new id
  EXPECT_NE(d, a);
  t.cancel(a);  // the old id does not cancel the new timer
  EXPECT_EQ(t.size(), 2u);
  std::vector<std::uint64_t> fired;
  t.expire(100, [&](std::uint64_t c, TimerHeap::Id) { fired.push_back(c); });
  EXPECT_EQ(fired, (std::vector<std::uint64_t>{9, 2}));
  (void)b;
  EXPECT_EQ(t.next_deadline(), TimerHeap::kNever);
}

TEST(TimerHeapTest, MatchesAReferenceModel) {
  KernelHeap k(1024);
  TimerHeap t(k, 5000);
  std::mt19937_64 rng(7);
  std::multimap<std::int64_t, std::uint64_t> model;
  std::map<std::uint64_t, std::pair<TimerHeap::Id, std::int64_t>> live;  // cookie -> (id, deadline)
  std::uint64_t next_cookie = 1;
  std::int64_t now = 0;
  for (int i = 0; i < 200000; ++i) {
    int op = static_cast<int>(rng() % 10);
    if (op < 5 && live.size() < 5000) {
      std::int64_t d = now + static_cast<std::int64_t>(rng() % 1000);
      auto id = t.add(d, next_cookie);
      ASSERT_NE(id, TimerHeap::kNone);
      live[next_cookie] = {id, d};
      model.emplace(d, next_cookie++);
    } else if (op < 8 && !live.empty()) {
      auto it = live.lower_bound(rng() % next_cookie);
      if (it == live.end()) it = live.begin();
      t.cancel(it->second.first);
      auto range = model.equal_range(it->second.second);
      for (auto m = range.first; m != range.second; ++m) {
        if (m->second == it->first) {
          model.erase(m);
          break;
        }
      }
      live.erase(it);
    } else {
      now += static_cast<std::int64_t>(rng() % 50);
      t.expire(now, [&](std::uint64_t c, TimerHeap::Id) {
        ASSERT_TRUE(live.count(c));
        ASSERT_LE(live[c].second, now);
        live.erase(c);
      });
      while (!model.empty() && model.begin()->first <= now) model.erase(model.begin());
    }
    ASSERT_EQ(t.size(), model.size());
    ASSERT_EQ(t.next_deadline(), model.empty() ? TimerHeap::kNever : model.begin()->first);
  }
}

}  // namespace
}  // namespace mnv
