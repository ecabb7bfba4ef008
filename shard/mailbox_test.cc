// Tests of the cross-shard mailboxes and their SPSC rings: FIFO order and no loss under a
// multi-million-message two-thread stress, back-pressure (a full ring refuses, drops nothing),
// publish-once batching (staged messages stay invisible), round-robin fairness, no allocation on
// the send/receive paths, and the sleep protocol: a sleeping shard is woken through a real
// blocking primitive (an eventfd, and the runtime's pollers), and a ping-pong that puts both
// shards to sleep on every message hammers the sleep/wake race with every wait bounded, so a
// lost wake-up fails the test instead of hanging it. Runs under ThreadSanitizer (--config=tsan),
// with smaller counts under sanitizers (MNV_SANITIZER).
#include "shard/mailbox.h"

#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/poller.h"
#include "runtime/wake_fd.h"

// Counts global operator new calls, to show the hot paths never allocate. (GCC, seeing malloc
// inside the replaced operator new and free inside the replaced operator delete after inlining,
// would call each delete "mismatched"; they are a matching pair.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
std::atomic<long> g_news{0};
}
void* operator new(std::size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  std::size_t al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace mnv {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::int64_t kMs = 1000000;
constexpr std::int64_t kPatience = 5000 * kMs;  // a wake-up that has not come by then is lost

#ifdef MNV_SANITIZER
constexpr std::uint64_t kStressMessages = 1000000;  // each way
constexpr int kPingPongs = 10000;
constexpr int kRaces = 30000;
constexpr std::uint64_t kPerSender = 60000;
#else
constexpr std::uint64_t kStressMessages = 5000000;  // each way
constexpr int kPingPongs = 30000;
constexpr int kRaces = 100000;
constexpr std::uint64_t kPerSender = 300000;
#endif

std::int64_t since_ns(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
}

// A message whose every byte follows from (id, from), so a torn or mixed-up copy is caught.
ShardMessage make_message(std::uint64_t id, std::uint32_t kind = 7) {
  ShardMessage m;
  std::memset(&m, 0, sizeof m);
  m.kind = kind;
  m.id = id;
  for (std::size_t i = 0; i < kShardPayload; ++i) {
    m.payload[i] = static_cast<unsigned char>(id * 131 + i * 7 + kind);
  }
  return m;
}

bool payload_ok(const ShardMessage& m) {
  for (std::size_t i = 0; i < kShardPayload; ++i) {
    if (m.payload[i] != static_cast<unsigned char>(m.id * 131 + i * 7 + m.kind)) return false;
  }
  return true;
}

// Small, fast, per-thread pseudo-random numbers (xorshift64*).
struct Rng {
  std::uint64_t s;
  explicit Rng(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  std::uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
};

void spin_for(std::uint64_t iterations) {
  for (std::uint64_t i = 0; i < iterations; ++i) asm volatile("" ::: "memory");
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// CPUs this process may run on.
int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return CPU_COUNT(&set);
}

// Busy-waits until pred() or `limit` rounds pass; yields now and then, so a peer that shares this
// CPU (a loaded test machine) gets to run. Returns pred().
template <typename Pred>
bool spin_until(Pred pred, std::uint64_t limit) {
  for (std::uint64_t k = 0; k < limit; ++k) {
    if (pred()) return true;
    if ((k & 255) == 255) {
      std::this_thread::yield();
    } else {
      cpu_relax();
    }
  }
  return pred();
}

// ---------------------------------------------------------------------------------------------
// SpscRing on its own.

TEST(SpscRingTest, FifoAcrossManyWraps) {
  SpscRing<std::uint64_t> r(8);
  EXPECT_EQ(r.capacity(), 8u);
  std::uint64_t next_in = 0, next_out = 0;
  for (int round = 0; round < 1000; ++round) {
    int k = round % 9;  // 0..8 at a time, so the indices cross the wrap at every offset
    for (int i = 0; i < k; ++i) ASSERT_TRUE(r.try_push(next_in++));
    std::uint64_t v;
    while (r.try_pop(&v)) ASSERT_EQ(v, next_out++);
  }
  EXPECT_EQ(next_in, next_out);
}

TEST(SpscRingTest, StagedMessagesAreInvisibleUntilPublished) {
  SpscRing<std::uint64_t> r(16);
  for (std::uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(r.try_stage(i));
  EXPECT_EQ(r.unpublished(), 5u);
  EXPECT_EQ(r.readable(), 0u);
  std::uint64_t v;
  EXPECT_FALSE(r.try_pop(&v));
  r.publish();
  EXPECT_EQ(r.unpublished(), 0u);
  ASSERT_EQ(r.readable(), 5u);
  for (std::uint64_t i = 0; i < 5; ++i) EXPECT_EQ(r.peek(i), i);
  // Staged after a publish: the consumer still sees only the published five.
  ASSERT_TRUE(r.try_stage(5));
  r.consume(5);
  r.release();
  EXPECT_EQ(r.readable(), 0u);
  r.publish();
  ASSERT_TRUE(r.try_pop(&v));
  EXPECT_EQ(v, 5u);
}

TEST(SpscRingTest, FullRingRefusesUntilTheConsumerReleases) {
  SpscRing<std::uint64_t> r(4);
  for (std::uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(r.try_push(i));
  EXPECT_FALSE(r.try_push(99));
  EXPECT_FALSE(r.try_stage(99));
  // Consumed but not released: the slots are still the consumer's.
  ASSERT_EQ(r.readable(), 4u);
  r.consume(2);
  EXPECT_FALSE(r.try_push(99));
  r.release();
  EXPECT_TRUE(r.try_push(4));
  EXPECT_TRUE(r.try_push(5));
  EXPECT_FALSE(r.try_push(99));
  std::uint64_t out[8];
  // pop_batch reloads the write index when it knows of fewer than asked: 2, 3 (before the wrap)
  // and 4, 5 (after it).
  ASSERT_EQ(r.pop_batch(out, 8), 4u);
  r.release();
  for (std::uint64_t i = 0; i < 4; ++i) EXPECT_EQ(out[i], i + 2);
  EXPECT_EQ(r.readable(), 0u);
}

// ---------------------------------------------------------------------------------------------
// Mailboxes, one thread playing both sides (deterministic).

TEST(MailboxTest, MessageIsOneCacheLine) {
  EXPECT_EQ(sizeof(ShardMessage), 64u);
  EXPECT_LE(alignof(ShardMessage), 16u);  // it lives in micro-thread frames (16-byte aligned)
}

TEST(MailboxTest, SentMessagesAreInvisibleUntilFlush) {
  Mailboxes mb(2, 16);
  for (std::uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(mb.send(0, 1, make_message(i)));
  ShardMessage out[8];
  EXPECT_FALSE(mb.has_messages(1));
  EXPECT_EQ(mb.receive(1, out, 8), 0u);
  mb.flush(0);
  EXPECT_TRUE(mb.has_messages(1));
  ASSERT_EQ(mb.receive(1, out, 8), 3u);
  for (std::uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out[i].id, i);
    EXPECT_EQ(out[i].from, 0u);  // filled in by send()
    EXPECT_TRUE(payload_ok(out[i]));
  }
  EXPECT_FALSE(mb.has_messages(1));
  MailboxStats s0 = mb.stats(0), s1 = mb.stats(1);
  EXPECT_EQ(s0.sent, 3u);
  EXPECT_EQ(s1.received, 3u);
  EXPECT_EQ(s0.wakeups, 0u);
  EXPECT_EQ(s0.refused, 0u);
}

TEST(MailboxTest, FullRingRefusesAndDropsNothing) {
  Mailboxes mb(2, 8);
  std::uint64_t next = 0;
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(mb.send(0, 1, make_message(next++)));
  EXPECT_FALSE(mb.send(0, 1, make_message(next)));  // staged ones count: the ring is full
  mb.flush(0);
  EXPECT_FALSE(mb.send(0, 1, make_message(next)));  // published, not yet received: still full
  EXPECT_EQ(mb.stats(0).refused, 2u);

  std::vector<std::uint64_t> got;
  ShardMessage out[16];
  std::size_t n = mb.receive(1, out, 3);
  ASSERT_EQ(n, 3u);
  for (std::size_t i = 0; i < n; ++i) got.push_back(out[i].id);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(mb.send(0, 1, make_message(next++)));
  EXPECT_FALSE(mb.send(0, 1, make_message(next)));
  mb.flush(0);
  while ((n = mb.receive(1, out, 16)) != 0) {
    for (std::size_t i = 0; i < n; ++i) got.push_back(out[i].id);
  }
  ASSERT_EQ(got.size(), 11u);
  for (std::uint64_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], i);
  EXPECT_EQ(mb.stats(0).sent, 11u);
  EXPECT_EQ(mb.stats(0).refused, 3u);
  EXPECT_EQ(mb.stats(1).received, 11u);
}

TEST(MailboxTest, ReceiveServesSourcesRoundRobin) {
  Mailboxes mb(4, 256);
  for (std::size_t from = 1; from < 4; ++from) {
    for (std::uint64_t i = 0; i < 100; ++i) ASSERT_TRUE(mb.send(from, 0, make_message(i)));
    mb.flush(from);
  }
  ShardMessage out[9];
  std::uint64_t next[4] = {0, 0, 0, 0};
  std::size_t total = 0;
  for (int call = 0; call < 10; ++call) {
    ASSERT_EQ(mb.receive(0, out, 9), 9u);
    int per_source[4] = {0, 0, 0, 0};
    for (const ShardMessage& m : out) {
      ASSERT_GE(m.from, 1u);
      ASSERT_LT(m.from, 4u);
      EXPECT_EQ(m.id, next[m.from]++);  // FIFO per source
      ++per_source[m.from];
    }
    EXPECT_EQ(per_source[1], 3);
    EXPECT_EQ(per_source[2], 3);
    EXPECT_EQ(per_source[3], 3);
    total += 9;
  }
  // A lone busy source may fill the whole batch.
  ShardMessage big[300];
  std::size_t n;
  while ((n = mb.receive(0, big, 300)) != 0) total += n;
  EXPECT_EQ(total, 300u);
  for (std::size_t from = 1; from < 4; ++from) ASSERT_TRUE(mb.send(from, 0, make_message(100)));
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(mb.send(2, 0, make_message(101 + i)));
  for (std::size_t from = 1; from < 4; ++from) mb.flush(from);
  EXPECT_EQ(mb.receive(0, big, 300), 53u);
}

TEST(MailboxTest, SendFlushReceiveNeverAllocate) {
  Mailboxes mb(3, 64);
  int wakes = 0;
  for (std::size_t s = 0; s < 3; ++s) {
    mb.set_waker(s, [](void* ctx) { ++*static_cast<int*>(ctx); }, &wakes);
  }
  ShardMessage out[32];
  long before = g_news.load();
  std::uint64_t received = 0;
  for (std::uint64_t i = 0; i < 100000; ++i) {
    ASSERT_TRUE(mb.send(i % 2, 2, make_message(i)));
    if (i % 16 == 15) {
      mb.flush(0);
      mb.flush(1);
      mb.prepare_sleep(2);
      if (mb.has_messages(2)) mb.cancel_sleep(2);
      received += mb.receive(2, out, 32);
      mb.wake_done(2);
      (void)mb.stats(2);
    }
  }
  EXPECT_EQ(g_news.load() - before, 0);
  EXPECT_EQ(received, 100000u);
}

// The waker is called only for a destination that said it is asleep, once per sleep.
TEST(MailboxTest, FlushWakesOnlySleepingShardsOncePerSleep) {
  Mailboxes mb(3, 16);
  int wakes[3] = {0, 0, 0};
  for (std::size_t s = 0; s < 3; ++s) {
    mb.set_waker(s, [](void* ctx) { ++*static_cast<int*>(ctx); }, &wakes[s]);
  }
  ShardMessage out[16];

  // Awake receiver: no wake.
  ASSERT_TRUE(mb.send(0, 1, make_message(0)));
  mb.flush(0);
  EXPECT_EQ(wakes[1], 0);
  EXPECT_EQ(mb.receive(1, out, 16), 1u);

  // Asleep, then two senders flush: one wake, and the flag is taken down by the waking sender.
  mb.prepare_sleep(1);
  EXPECT_FALSE(mb.has_messages(1));
  EXPECT_TRUE(mb.asleep(1));
  ASSERT_TRUE(mb.send(0, 1, make_message(1)));
  mb.flush(0);
  EXPECT_EQ(wakes[1], 1);
  EXPECT_FALSE(mb.asleep(1));
  ASSERT_TRUE(mb.send(2, 1, make_message(2)));
  mb.flush(2);
  EXPECT_EQ(wakes[1], 1);
  mb.wake_done(1);
  EXPECT_EQ(mb.receive(1, out, 16), 2u);
  EXPECT_EQ(mb.stats(0).wakeups, 1u);
  EXPECT_EQ(mb.stats(2).wakeups, 0u);

  // A flush with nothing staged wakes nobody, even a sleeper.
  mb.prepare_sleep(1);
  mb.flush(0);
  EXPECT_EQ(wakes[1], 1);

  // Published before the receiver's check: the check sees it and the receiver cancels.
  mb.cancel_sleep(1);
  ASSERT_TRUE(mb.send(0, 1, make_message(3)));
  mb.flush(0);
  mb.prepare_sleep(1);
  EXPECT_TRUE(mb.has_messages(1));
  mb.cancel_sleep(1);
  EXPECT_EQ(wakes[1], 1);
  EXPECT_EQ(mb.receive(1, out, 16), 1u);
  EXPECT_EQ(wakes[0], 0);
  EXPECT_EQ(wakes[2], 0);
}

// ---------------------------------------------------------------------------------------------
// Two real threads, busy-polling: order and no loss.

struct StressSide {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t bad = 0;  // wrong order, sender, kind or payload
  std::uint64_t first_bad_id = 0, first_bad_expected = 0;
};

void stress_side(Mailboxes& mb, std::size_t me, std::size_t peer, std::uint64_t n,
                 std::atomic<int>& ready, StressSide* out) {
  Rng rng(me + 1);
  ShardMessage in[64];
  ready.fetch_add(1);
  while (!spin_until([&] { return ready.load() == 2; }, 4096)) {
  }
  std::uint64_t next_send = 0, next_expect = 0;
  while (next_send < n || next_expect < n) {
    bool progress = false;
    std::uint64_t batch = 1 + rng.next() % 32;  // publish-once batches of varying size
    for (std::uint64_t b = 0; b < batch && next_send < n; ++b) {
      if (!mb.send(me, peer, make_message(next_send, 3))) break;  // full: flush, drain, retry
      ++next_send;
      progress = true;
    }
    mb.flush(me);
    std::size_t got = mb.receive(me, in, 1 + rng.next() % 64);
    for (std::size_t i = 0; i < got; ++i) {
      const ShardMessage& m = in[i];
      if (m.id != next_expect || m.from != peer || m.kind != 3 || !payload_ok(m)) {
        if (out->bad++ == 0) {
          out->first_bad_id = m.id;
          out->first_bad_expected = next_expect;
        }
      }
      ++next_expect;
    }
    if (got != 0) progress = true;
    if (!progress) std::this_thread::yield();  // the peer may share our CPU
  }
  out->sent = next_send;
  out->received = next_expect;
}

TEST(MailboxStressTest, MillionsOfMessagesEachWayArriveInOrder) {
  // A small ring, so the full-ring path runs constantly too.
  Mailboxes mb(2, 256);
  std::atomic<int> ready{0};
  StressSide side[2];
  Clock::time_point start = Clock::now();
  std::thread t1(stress_side, std::ref(mb), 1, 0, kStressMessages, std::ref(ready), &side[1]);
  stress_side(mb, 0, 1, kStressMessages, ready, &side[0]);
  t1.join();
  double secs = since_ns(start) / 1e9;
  for (int s = 0; s < 2; ++s) {
    EXPECT_EQ(side[s].bad, 0u) << "shard " << s << ": got id " << side[s].first_bad_id
                               << ", expected " << side[s].first_bad_expected;
    EXPECT_EQ(side[s].sent, kStressMessages);
    EXPECT_EQ(side[s].received, kStressMessages);
    MailboxStats st = mb.stats(s);
    EXPECT_EQ(st.sent, kStressMessages);
    EXPECT_EQ(st.received, kStressMessages);
    EXPECT_EQ(st.wakeups, 0u);
  }
  std::printf("stress: %llu messages each way in %.2f s; refusals %llu / %llu\n",
              static_cast<unsigned long long>(kStressMessages), secs,
              static_cast<unsigned long long>(mb.stats(0).refused),
              static_cast<unsigned long long>(mb.stats(1).refused));
  EXPECT_FALSE(mb.has_messages(0));
  EXPECT_FALSE(mb.has_messages(1));
}

// ---------------------------------------------------------------------------------------------
// Sleeping and waking, with real blocking primitives.

// Something a shard blocks on, and the waker that ends the block from another thread.
class Sleeper {
 public:
  virtual ~Sleeper() = default;
  // Called on the sleeping shard's own thread before it first sleeps (a poller's io_uring is
  // SINGLE_ISSUER: only the thread that set it up may enter it, as in production).
  virtual void attach() {}
  // Blocks until woken (a spurious early return is allowed) or timeout_ns passes.
  virtual void wait(std::int64_t timeout_ns) = 0;
  virtual void wake() = 0;
  static void waker(void* ctx) { static_cast<Sleeper*>(ctx)->wake(); }
};

// An eventfd: wake() writes it, wait() polls it and drains it.
class EventfdSleeper : public Sleeper {
 public:
  EventfdSleeper() : fd_(open_wake_fd()) { MNV_ASSERT(fd_ >= 0); }
  ~EventfdSleeper() override { ::close(fd_); }
  void wait(std::int64_t timeout_ns) override {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout_ns / kMs)) > 0) drain_wake_fd(fd_);
  }
  void wake() override { signal_wake_fd(fd_); }

 private:
  int fd_;
};

// The runtime's poller: what a shard really sleeps in.
// Senders call wake() only after reading the shard's asleep flag, which the shard sets after
// attach(); that seq_cst store/load pair also orders poller_'s creation before its use.
class PollerSleeper : public Sleeper {
 public:
  explicit PollerSleeper(PollerKind kind) : kind_(kind) {}
  void attach() override {
    poller_ = Poller::create(kind_, 64);
    MNV_ASSERT(poller_ != nullptr);
  }
  void wait(std::int64_t timeout_ns) override {
    PollEvent ev[4];
    int r = poller_->wait(timeout_ns, ev, 4);
    MNV_ASSERT(r >= 0 || r == -EINTR);
  }
  void wake() override { poller_->wake(); }

 private:
  PollerKind kind_;
  std::unique_ptr<Poller> poller_;
};

enum class SleeperKind { kEventfd, kIoUring, kEpoll, kPoll };

std::unique_ptr<Sleeper> make_sleeper(SleeperKind kind) {
  switch (kind) {
    case SleeperKind::kEventfd:
      return std::make_unique<EventfdSleeper>();
    case SleeperKind::kIoUring:
      return std::make_unique<PollerSleeper>(PollerKind::kIoUring);
    case SleeperKind::kEpoll:
      return std::make_unique<PollerSleeper>(PollerKind::kEpoll);
    case SleeperKind::kPoll:
      return std::make_unique<PollerSleeper>(PollerKind::kPoll);
  }
  return nullptr;
}

std::string sleeper_name(const testing::TestParamInfo<SleeperKind>& info) {
  switch (info.param) {
    case SleeperKind::kEventfd:
      return "eventfd";
    case SleeperKind::kIoUring:
      return "io_uring";
    case SleeperKind::kEpoll:
      return "epoll";
    case SleeperKind::kPoll:
      return "poll";
  }
  return "unknown";
}

struct SleepCounts {
  std::uint64_t cancelled = 0;  // has_messages() saw a message after prepare_sleep()
  std::uint64_t slept = 0;      // went into wait()
  bool lost = false;            // waited kPatience with a message never arriving
};

// Blocks shard `me` until a message is waiting, by the sleep protocol; every wait is bounded, so
// a lost wake-up ends in lost = true after kPatience instead of a hang. With `widen`, a random
// pause (up to ~1 µs) between prepare_sleep and has_messages widens the race window, so senders
// land in it often; the protocol must hold for any such delay.
void await_message(Mailboxes& mb, std::size_t me, Sleeper& sleeper, SleepCounts* c,
                   Rng* widen = nullptr) {
  Clock::time_point start = Clock::now();
  while (!mb.has_messages(me)) {
    mb.prepare_sleep(me);
    if (widen != nullptr && widen->next() % 2 == 0) spin_for(widen->next() % 1024);
    if (mb.has_messages(me)) {
      mb.cancel_sleep(me);
      ++c->cancelled;
      break;
    }
    std::int64_t left = kPatience - since_ns(start);
    if (left <= 0) {
      mb.cancel_sleep(me);
      c->lost = true;
      return;
    }
    ++c->slept;
    sleeper.wait(left);
    mb.wake_done(me);
  }
}

class MailboxSleepTest : public testing::TestWithParam<SleeperKind> {};

TEST_P(MailboxSleepTest, SleepingShardIsWokenBySendAndFlush) {
  Mailboxes mb(2, 16);
  std::unique_ptr<Sleeper> sleeper = make_sleeper(GetParam());
  mb.set_waker(1, Sleeper::waker, sleeper.get());
  std::atomic<bool> going_to_sleep{false};
  SleepCounts counts;
  ShardMessage got[4];
  std::size_t n = 0;
  std::thread consumer([&] {
    sleeper->attach();
    going_to_sleep.store(true);
    await_message(mb, 1, *sleeper, &counts);
    n = mb.receive(1, got, 4);
  });
  while (!going_to_sleep.load()) std::this_thread::yield();
  // Only gives the consumer time to block first; correctness does not depend on it.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(mb.send(0, 1, make_message(42)));
  mb.flush(0);
  consumer.join();
  EXPECT_FALSE(counts.lost);
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(got[0].id, 42u);
  EXPECT_LE(mb.stats(0).wakeups, 1u);
}

// Two shards bounce one message back and forth; each waits for it by the sleep protocol, so both
// race prepare_sleep/has_messages against the other's publish/flag check on every message. Half
// the sends are aimed at the race window: the sender waits (bounded) until the receiver has said
// it is asleep and sends a few nanoseconds later, landing between the receiver's prepare_sleep
// and has_messages (a window the receiver widens at random) or just after; the others go after a
// random delay. The printed counts show how often each side of the race was taken.
TEST_P(MailboxSleepTest, PingPongThroughSleepsLosesNoWakeup) {
  Mailboxes mb(2, 16);
  std::unique_ptr<Sleeper> sleepers[2] = {make_sleeper(GetParam()), make_sleeper(GetParam())};
  for (std::size_t s = 0; s < 2; ++s) mb.set_waker(s, Sleeper::waker, sleepers[s].get());
  SleepCounts counts[2];
  std::uint64_t errors[2] = {0, 0};
  auto side = [&](std::size_t me) {
    sleepers[me]->attach();
    std::size_t peer = 1 - me;
    Rng rng(me + 11);
    auto send_racing = [&](const ShardMessage& m) {
      if (rng.next() % 2 == 0) {
        spin_until([&] { return mb.asleep(peer); }, 20000);
        spin_for(rng.next() % 64);
      } else {
        spin_for(rng.next() % 2000);
      }
      bool sent = mb.send(me, peer, m);
      MNV_ASSERT(sent);
      mb.flush(me);
    };
    ShardMessage in[4];
    for (int i = 0; i < kPingPongs; ++i) {
      if (me == 0) send_racing(make_message(i));
      await_message(mb, me, *sleepers[me], &counts[me], &rng);
      if (counts[me].lost) return;
      std::size_t n = mb.receive(me, in, 4);
      if (n != 1 || in[0].id != static_cast<std::uint64_t>(i) || !payload_ok(in[0])) ++errors[me];
      if (me == 1) send_racing(in[0]);
    }
  };
  std::thread t1(side, 1);
  side(0);
  if (counts[0].lost) {
    // Unblock the echo side so the join cannot hang: it would be stuck only by a lost wake too.
    mb.send(0, 1, make_message(0));
    mb.flush(0);
  }
  t1.join();
  for (int s = 0; s < 2; ++s) {
    EXPECT_FALSE(counts[s].lost) << "shard " << s << " lost a wake-up";
    EXPECT_EQ(errors[s], 0u);
    EXPECT_EQ(mb.stats(s).sent, static_cast<std::uint64_t>(kPingPongs));
    EXPECT_EQ(mb.stats(s).received, static_cast<std::uint64_t>(kPingPongs));
    // At most one waker call per prepare_sleep (the exchange takes the flag down).
    EXPECT_LE(mb.stats(1 - s).wakeups, counts[s].slept + counts[s].cancelled);
  }
  std::printf("ping-pong x%d: shard 0 slept %llu, cancelled %llu; shard 1 slept %llu, cancelled "
              "%llu; wakers called %llu + %llu\n",
              kPingPongs, static_cast<unsigned long long>(counts[0].slept),
              static_cast<unsigned long long>(counts[0].cancelled),
              static_cast<unsigned long long>(counts[1].slept),
              static_cast<unsigned long long>(counts[1].cancelled),
              static_cast<unsigned long long>(mb.stats(0).wakeups),
              static_cast<unsigned long long>(mb.stats(1).wakeups));
  EXPECT_GT(counts[0].slept + counts[1].slept, 0u);
}

// Two threads meeting at a barrier before every round, so their racing steps start within
// about a cache-line transfer of each other. Bounded: a barrier not reached in kPatience reports
// false instead of hanging.
class SpinBarrier {
 public:
  bool arrive_and_wait() {
    std::uint32_t round = round_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == 1) {
      arrived_.store(0, std::memory_order_relaxed);
      round_.store(round + 1, std::memory_order_release);
      return true;
    }
    Clock::time_point start = Clock::now();
    while (!spin_until([&] { return round_.load(std::memory_order_acquire) != round; }, 4096)) {
      if (since_ns(start) > kPatience) return false;
    }
    return true;
  }

 private:
  std::atomic<std::uint32_t> arrived_{0};
  std::atomic<std::uint32_t> round_{0};
};

// The lost-wake-up race itself, run as a litmus test: each round both threads leave a barrier
// together; after a random pause the receiver runs the sleep protocol (pausing at random between
// prepare_sleep and has_messages), and after another the sender sends one message and flushes.
// So the sender's publish and the receiver's flag store race each other through the two cores'
// store buffers — the store-load reordering the seq_cst pair exists to forbid — and the publish
// lands before, inside and after the receiver's check window. Every round must deliver its
// message; a receiver that sleeps through it reports a lost wake-up after kPatience.
TEST_P(MailboxSleepTest, SendRacingTheSleepLosesNoWakeup) {
  Mailboxes mb(2, 16);
  std::unique_ptr<Sleeper> sleeper = make_sleeper(GetParam());
  mb.set_waker(1, Sleeper::waker, sleeper.get());
  SpinBarrier barrier;
  std::atomic<bool> stuck{false};
  SleepCounts counts;
  std::uint64_t errors = 0;
  std::thread receiver([&] {
    sleeper->attach();
    Rng rng(5);
    ShardMessage in[4];
    for (int i = 0; i < kRaces; ++i) {
      if (!barrier.arrive_and_wait()) {
        stuck.store(true);
        return;
      }
      spin_for(rng.next() % 256);
      await_message(mb, 1, *sleeper, &counts, &rng);
      if (counts.lost) {
        stuck.store(true);
        return;
      }
      std::size_t n = mb.receive(1, in, 4);
      if (n != 1 || in[0].id != static_cast<std::uint64_t>(i)) ++errors;
    }
  });
  Rng rng(6);
  for (int i = 0; i < kRaces && !stuck.load(); ++i) {
    if (!barrier.arrive_and_wait()) break;
    spin_for(rng.next() % 256);
    bool sent = mb.send(0, 1, make_message(i));
    MNV_ASSERT(sent);
    mb.flush(0);
  }
  receiver.join();
  EXPECT_FALSE(counts.lost) << "the receiver lost a wake-up";
  EXPECT_FALSE(stuck.load());
  EXPECT_EQ(errors, 0u);
  EXPECT_EQ(mb.stats(1).received, static_cast<std::uint64_t>(kRaces));
  EXPECT_LE(mb.stats(0).wakeups, counts.slept + counts.cancelled);
  std::printf("races x%d: receiver slept %llu, cancelled %llu; wakers called %llu\n", kRaces,
              static_cast<unsigned long long>(counts.slept),
              static_cast<unsigned long long>(counts.cancelled),
              static_cast<unsigned long long>(mb.stats(0).wakeups));
  // Both outcomes of the race were really taken — when the two threads can run at once at all.
  EXPECT_GT(counts.slept, 0u);
  // Whether the "message arrived while preparing to sleep" side was hit depends on scheduling on
  // a shared machine (and sanitizer timing): it is reported, not required; the property tested
  // is that no wake-up was lost in either case.
  if (usable_cpus() >= 2) {
    if (counts.cancelled == 0) std::printf("the cancelled-sleep side of the race was not hit this run\n");
  } else {
    std::printf("one usable CPU: the threads never overlap, so the race was not exercised\n");
  }
}

// Three shards send bursts to one that sleeps whenever its rings are empty: every message arrives,
// in order per sender, and every wait is bounded.
TEST_P(MailboxSleepTest, ManySendersOneSleeperLoseNothing) {
  constexpr std::size_t kShards = 4;
  Mailboxes mb(kShards, 64);
  std::unique_ptr<Sleeper> sleeper = make_sleeper(GetParam());
  mb.set_waker(0, Sleeper::waker, sleeper.get());
  sleeper->attach();  // the receiver is this thread
  std::atomic<bool> stop{false};
  std::vector<std::thread> senders;
  for (std::size_t s = 1; s < kShards; ++s) {
    senders.emplace_back([&, s] {
      Rng rng(s);
      std::uint64_t next = 0;
      while (next < kPerSender && !stop.load(std::memory_order_relaxed)) {
        std::uint64_t burst = 1 + rng.next() % 24;
        for (std::uint64_t b = 0; b < burst && next < kPerSender; ++b) {
          if (!mb.send(s, 0, make_message(next))) break;
          ++next;
        }
        mb.flush(s);
        if (rng.next() % 8 == 0) spin_for(rng.next() % 4000);  // let the receiver fall asleep
        if (rng.next() % 64 == 0) std::this_thread::yield();
      }
    });
  }
  SleepCounts counts;
  std::uint64_t expect[kShards] = {0, 0, 0, 0};
  std::uint64_t errors = 0, total = 0;
  ShardMessage in[48];
  while (total < kPerSender * (kShards - 1)) {
    std::size_t n = mb.receive(0, in, 48);
    for (std::size_t i = 0; i < n; ++i) {
      std::uint32_t from = in[i].from;
      if (from == 0 || from >= kShards || in[i].id != expect[from]++ || !payload_ok(in[i])) {
        ++errors;
      }
    }
    total += n;
    if (n == 0) {
      await_message(mb, 0, *sleeper, &counts);
      if (counts.lost) break;
    }
  }
  stop.store(true);
  for (std::thread& t : senders) t.join();
  EXPECT_FALSE(counts.lost) << "the receiver lost a wake-up";
  EXPECT_EQ(errors, 0u);
  EXPECT_EQ(total, kPerSender * (kShards - 1));
  std::uint64_t wakeups = 0;
  for (std::size_t s = 1; s < kShards; ++s) wakeups += mb.stats(s).wakeups;
  EXPECT_LE(wakeups, counts.slept + counts.cancelled);  // at most one per prepare_sleep
  std::printf("many senders: %llu messages, receiver slept %llu, cancelled %llu, wakers %llu\n",
              static_cast<unsigned long long>(total),
              static_cast<unsigned long long>(counts.slept),
              static_cast<unsigned long long>(counts.cancelled),
              static_cast<unsigned long long>(wakeups));
}

INSTANTIATE_TEST_SUITE_P(Sleepers, MailboxSleepTest,
                         testing::Values(SleeperKind::kEventfd, SleeperKind::kIoUring,
                                         SleeperKind::kEpoll, SleeperKind::kPoll),
                         sleeper_name);

}  // namespace
}  // namespace mnv
