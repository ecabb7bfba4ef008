// Tests of pinned shards, as threads and as processes where the behaviour is the same (each is
// pinned and named, a shard that fails to start stops the others, cross-shard calls and waking a
// sleeping shard, posting an fd); with threads, cross-shard call deadlines (both outcomes),
// back-pressure on a full ring and SO_REUSEPORT spreading connections; with processes, what only
// they do: restarts (and their limit), killing a stuck shard, and calls to a shard that died.
#include "shard/shard.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include "net/io.h"
#include "net/service.h"
#include "runtime/raise.h"
#include "shard/cross_call.h"
#include "shard/shared_memory.h"
#include "tests/echo_fixture.h"

namespace mnv {
namespace {

AffinityConfig two_shards(const Topology& topo, std::size_t pool = 256) {
  AffinityConfig a;
  std::vector<int> cpus;
  for (int c : topo.allowed()) cpus.push_back(c);
  a.shards = cpus.size() >= 2 ? 2 : 1;
  a.cpus.assign(cpus.begin(), cpus.begin() + a.shards);
  a.poller = PollerKind::kIoUring;
  a.grace_ms = 100;
  a.pool_size = pool;
  return a;
}

std::unique_ptr<Topology> topology() {
  std::string error;
  auto t = Topology::discover(&error);
  EXPECT_NE(t, nullptr) << error;
  return t;
}

// Shards as threads and as processes (shard/shard.h): what the shards report comes back through
// shared memory, which works the same in both (a shard process's own memory, gtest's included,
// never reaches this one).
class ShardModeTest : public ::testing::TestWithParam<ShardMode> {
 protected:
  AffinityConfig config(const Topology& topo) {
    AffinityConfig a = two_shards(topo);
    a.shard_mode = GetParam();
    return a;
  }
};

std::string mode_name(const ::testing::TestParamInfo<ShardMode>& i) { return shard_mode_name(i.param); }

struct StartReport {
  std::atomic<int> pid[2]{0, 0};
  std::atomic<int> pinned[2]{0, 0};
  std::atomic<int> named[2]{0, 0};  // its thread's name and its comm are "shard-K"
};

TEST_P(ShardModeTest, EachShardIsPinnedAndNamed) {
  auto topo = topology();
  ShardSetOptions o;
  o.affinity = config(*topo);
  SharedObject<StartReport> r;
  o.init = [&r](Shard& s, std::string*) {
    cpu_set_t set;
    CPU_ZERO(&set);
    bool pinned = ::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) == 1 && CPU_ISSET(s.cpu(), &set);
    std::string want = "shard-" + std::to_string(s.index());
    char name[32] = {};
    ::pthread_getname_np(::pthread_self(), name, sizeof name);
    std::ifstream comm("/proc/self/task/" + std::to_string(::gettid()) + "/comm");
    std::string c;
    std::getline(comm, c);
    r->pid[s.index()] = ::getpid();
    r->pinned[s.index()] = pinned ? 1 : 0;
    r->named[s.index()] = name == want && c == want ? 1 : 0;
    return true;
  };
  std::string error;
  auto set = ShardSet::start(*topo, o, &error);
  ASSERT_NE(set, nullptr) << error;
  EXPECT_EQ(set->processes(), GetParam() == ShardMode::kProcesses);
  set->request_stop();
  EXPECT_EQ(set->wait(), 0);
  for (int i = 0; i < o.affinity.shards; ++i) {
    EXPECT_EQ(r->pinned[i].load(), 1) << "shard " << i;
    EXPECT_EQ(r->named[i].load(), 1) << "shard " << i;
    if (GetParam() == ShardMode::kProcesses) {
      EXPECT_NE(r->pid[i].load(), ::getpid()) << "shard " << i;  // a process of its own
    } else {
      EXPECT_EQ(r->pid[i].load(), ::getpid()) << "shard " << i;
    }
  }
  if (GetParam() == ShardMode::kProcesses && o.affinity.shards == 2) {
    EXPECT_NE(r->pid[0].load(), r->pid[1].load());
  }
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);  // (processes: every one was reaped)
  EXPECT_EQ(errno, ECHILD);
}

TEST_P(ShardModeTest, AShardThatFailsToStartStopsTheOthers) {
  auto topo = topology();
  ShardSetOptions o;
  o.affinity = config(*topo);
  if (o.affinity.shards < 2) GTEST_SKIP() << "needs 2 CPUs";
  o.init = [](Shard& s, std::string* error) {
    if (s.index() == 1) {
      *error = "cannot bind";
      return false;
    }
    return true;
  };
  std::string error;
  auto set = ShardSet::start(*topo, o, &error);
  EXPECT_EQ(set, nullptr);
  EXPECT_EQ(error, "shard 1: cannot bind");
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);  // (processes: shard 0's was called off and reaped)
  EXPECT_EQ(errno, ECHILD);
}

constexpr std::uint32_t kDouble = 1;
constexpr std::uint32_t kUnknown = 2;

void double_it(const ShardMessage& req, ShardMessage* reply, void*) {
  std::uint64_t v;
  std::memcpy(&v, req.payload, sizeof v);
  v *= 2;
  std::memcpy(reply->payload, &v, sizeof v);
}

struct CallResults {
  std::atomic<int> ok{0}, wrong{0}, timed_out{0}, no_handler{0}, reset{0};
  std::atomic<bool> done{false};
};

Finally note(CallResults* r) {
  for (;;) {
    if (error().code == ETIMEDOUT) ++r->timed_out;
    if (error().code == ENOSYS) ++r->no_handler;
    if (error().code == ECONNRESET) ++r->reset;
    co_await lower();
  }
}

Thread caller(std::size_t to, std::uint64_t from, int count, std::int64_t timeout_ns, CallResults* r) {
  co_await finally(note(r));
  for (int i = 0; i < count; ++i) {
    std::uint64_t v = from + static_cast<std::uint64_t>(i);
    ShardMessage reply = co_await cross_call(to, kDouble, &v, sizeof v, timeout_ns);
    std::uint64_t got;
    std::memcpy(&got, reply.payload, sizeof got);
    if (got == 2 * v) {
      ++r->ok;
    } else if (!(r->timed_out > 0)) {
      ++r->wrong;
    }
  }
  ShardMessage none = co_await cross_call(to, kUnknown, nullptr, 0, timeout_ns);
  (void)none;
  r->done = true;
  Shard::current()->set().request_stop();
}

TEST_P(ShardModeTest, CrossShardCallsRoundTripAndWakeASleepingShard) {
  auto topo = topology();
  ShardSetOptions o;
  o.affinity = config(*topo);
  if (o.affinity.shards < 2) GTEST_SKIP() << "needs 2 CPUs";
  HeapPool pool(16, 64);
  SharedObject<CallResults> r;  // (captured by address: the same in a forked shard process)
  o.init = [&pool, &r](Shard& s, std::string*) {
    if (s.index() == 1) s.handle(kDouble, double_it, nullptr);
    if (s.index() == 0) {
      s.kernel().start(pool, caller, std::size_t{1}, std::uint64_t{1000}, 10000, std::int64_t{5'000'000'000}, r.get());
    }
    return true;
  };
  std::string error;
  auto set = ShardSet::start(*topo, o, &error);
  ASSERT_NE(set, nullptr) << error;
  EXPECT_EQ(set->wait(), 0);  // the caller stopped the set
  EXPECT_TRUE(r->done);
  EXPECT_EQ(r->ok, 10000);
  EXPECT_EQ(r->wrong, 0);
  EXPECT_EQ(r->no_handler, 1);  // ENOSYS raised for a kind nobody handles
  // Shard 1 had nothing else to do: it slept between calls and had to be woken. (The mailboxes
  // are shared memory: readable here in both modes.)
  EXPECT_GT(set->mailboxes().stats(0).wakeups, 0u);
}

// Written by the hog as it starts: the late caller on shard 0 reads it (an eventfd, so waiting
// for the hog is waiting on an event).
int g_hog_started = -1;

// A micro-thread on shard 1 keeps its shard busy (never yields to the kernel) for a while.
Thread hog(std::int64_t ns) {
  ::eventfd_write(g_hog_started, 1);
  std::int64_t end = monotonic_ns() + ns;
  while (monotonic_ns() < end) {
  }
  co_return;
}

void start_hog(const ShardMessage&, void*) {
  static HeapPool hog_pool(4, 4);
  Shard::current()->kernel().start(hog_pool, hog, std::int64_t{300'000'000});
}

Thread late_caller(CallResults* r) {
  co_await finally(note(r));
  Shard::current()->post(1, 3, nullptr, 0);  // shard 1 starts hogging once it reads this
  {
    Socket started(g_hog_started);  // (closes it)
    std::uint64_t count;
    co_await read(started, &count, sizeof count);  // until the hog has started
  }
  std::uint64_t v = 7;
  co_await cross_call(1, kDouble, &v, sizeof v, 50'000'000);  // shard 1 is busy: times out
  ShardMessage reply = co_await cross_call(1, kDouble, &v, sizeof v, 5'000'000'000);  // answered later
  std::uint64_t got;
  std::memcpy(&got, reply.payload, sizeof got);
  if (got == 14) ++r->ok;
  r->done = true;
  Shard::current()->set().request_stop();
}

TEST(ShardTest, CrossShardCallDeadlineRaisesEtimedoutAndLateRepliesAreDropped) {
  auto topo = topology();
  ShardSetOptions o;
  o.affinity = two_shards(*topo);
  if (o.affinity.shards < 2) GTEST_SKIP() << "needs 2 CPUs";
  static HeapPool* pool;
  HeapPool p(16, 64);
  pool = &p;
  static CallResults results;
  results.ok = 0;
  results.timed_out = 0;
  results.done = false;
  g_hog_started = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(g_hog_started, 0);
  o.init = [](Shard& s, std::string*) {
    if (s.index() == 1) {
      s.handle(kDouble, double_it, nullptr);
      s.on_post(3, start_hog, nullptr);
    }
    if (s.index() == 0) s.kernel().start(*pool, late_caller, &results);
    return true;
  };
  std::string error;
  auto set = ShardSet::start(*topo, o, &error);
  ASSERT_NE(set, nullptr) << error;
  set->wait();
  EXPECT_TRUE(results.done);
  EXPECT_EQ(results.timed_out, 1);
  EXPECT_EQ(results.ok, 1);  // the second call got its own reply, not the first call's late one
}

// cross_call_status(): the same failures stored, not raised (no finally handler here: a raise
// would end the thread before `done`).
struct StatusResults {
  std::atomic<int> unknown{-1}, bad_shard{-1}, ok{-1};
  std::atomic<bool> done{false};
};

Thread status_caller(StatusResults* r) {
  int status = -1;
  co_await cross_call_status(1, kUnknown, nullptr, 0, 1'000'000'000, &status);
  r->unknown = status;
  co_await cross_call_status(7, kDouble, nullptr, 0, 1'000'000'000, &status);
  r->bad_shard = status;
  std::uint64_t v = 21;
  ShardMessage reply = co_await cross_call_status(1, kDouble, &v, sizeof v, 1'000'000'000, &status);
  std::uint64_t got = 0;
  std::memcpy(&got, reply.payload, sizeof got);
  r->ok = status == 0 && got == 42 ? 1 : 0;
  r->done = true;
  Shard::current()->set().request_stop();
}

TEST(ShardTest, CrossCallStatusStoresTheErrorInsteadOfRaisingIt) {
  auto topo = topology();
  ShardSetOptions o;
  o.affinity = two_shards(*topo);
  if (o.affinity.shards < 2) GTEST_SKIP() << "needs 2 CPUs";
  static HeapPool* pool;
  HeapPool p(16, 4);
  pool = &p;
  static StatusResults r;
  o.init = [](Shard& s, std::string*) {
    if (s.index() == 1) s.handle(kDouble, double_it, nullptr);
    if (s.index() == 0) s.kernel().start(*pool, status_caller, &r);
    return true;
  };
  std::string error;
  auto set = ShardSet::start(*topo, o, &error);
  ASSERT_NE(set, nullptr) << error;
  set->wait();
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.unknown.load(), ENOSYS);
  EXPECT_EQ(r.bad_shard.load(), EINVAL);
  EXPECT_EQ(r.ok.load(), 1);
  // (ETIMEDOUT stored in time: apps/rtb/freq_cap_test's slow owner.)
}

TEST(ShardTest, AFullRingMakesCallersWaitAndLosesNothing) {
  auto topo = topology();
  ShardSetOptions o;
  o.affinity = two_shards(*topo);
  if (o.affinity.shards < 2) GTEST_SKIP() << "needs 2 CPUs";
  o.mailbox_capacity = 4;  // tiny rings: 200 concurrent callers overflow them at once
  static HeapPool* pool;
  HeapPool p(16, 256);
  pool = &p;
  static CallResults results;
  results.ok = 0;
  results.wrong = 0;
  static std::atomic<int> finished;
  finished = 0;
  o.init = [](Shard& s, std::string*) {
    if (s.index() == 1) s.handle(kDouble, double_it, nullptr);
    if (s.index() == 0) {
      for (int i = 0; i < 200; ++i) {
        s.kernel().start(*pool, [](int k) -> Thread {
          for (int j = 0; j < 50; ++j) {
            std::uint64_t v = static_cast<std::uint64_t>(k * 1000 + j);
            ShardMessage reply = co_await cross_call(1, kDouble, &v, sizeof v, 10'000'000'000);
            std::uint64_t got;
            std::memcpy(&got, reply.payload, sizeof got);
            if (got == 2 * v) ++results.ok; else ++results.wrong;
          }
          if (++finished == 200) Shard::current()->set().request_stop();
        }, i);
      }
    }
    return true;
  };
  std::string error;
  auto set = ShardSet::start(*topo, o, &error);
  ASSERT_NE(set, nullptr) << error;
  set->wait();
  EXPECT_EQ(results.ok, 200 * 50);
  EXPECT_EQ(results.wrong, 0);
  EXPECT_GT(set->shard(0).stats().backlogged, 0u);  // the ring was full and callers waited
}

TEST(ShardTest, ReuseportSpreadsConnectionsOverShards) {
  auto topo = topology();
  ShardSetOptions o;
  o.affinity = two_shards(*topo, 2048);
  if (o.affinity.shards < 2) GTEST_SKIP() << "needs 2 CPUs";
  static std::unique_ptr<Server> servers[2];
  static std::atomic<std::uint16_t> port{0};
  port = 0;
  o.init = [](Shard& s, std::string* error) {
    ServerConfig c = testing::echo_config(2048);
    c.reuse_port = true;
    c.port = s.index() == 0 ? 0 : port.load();
    servers[s.index()] = Server::listen(s.kernel(), c, error);
    if (servers[s.index()] == nullptr) return false;
    port = servers[s.index()]->port();
    return true;
  };
  std::string error;
  auto set = ShardSet::start(*topo, o, &error);
  ASSERT_NE(set, nullptr) << error;
  std::vector<std::unique_ptr<testing::Client>> clients;
  for (int i = 0; i < 1000; ++i) {
    clients.push_back(std::make_unique<testing::Client>(port.load()));
    ASSERT_TRUE(clients.back()->send("c" + std::to_string(i) + "\n"));
  }
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(clients[i]->recv_line(), "Line 0: c" + std::to_string(i) + "\n");
  std::uint64_t a = servers[0]->accepted(), b = servers[1]->accepted();
  EXPECT_EQ(a + b, 1000u);
  EXPECT_GT(a, 0u);
  EXPECT_GT(b, 0u);
  std::printf("reuseport balance over 1000 connections: shard 0 %lu, shard 1 %lu\n", static_cast<unsigned long>(a),
              static_cast<unsigned long>(b));
  clients.clear();
  set->request_stop();
  set->wait();
  servers[0].reset();
  servers[1].reset();
}

// ---- Shards as processes ----------------------------------------------------------------------

AffinityConfig two_shard_processes(const Topology& topo, std::size_t pool = 256) {
  AffinityConfig a = two_shards(topo, pool);
  a.shard_mode = ShardMode::kProcesses;
  return a;
}

TEST(ShardProcessesTest, AutoMeansProcessesWithIsolationAndSeveralShards) {
  AffinityConfig a;
  a.shards = 2;
  EXPECT_FALSE(ShardSet::runs_as_processes(a));  // isolation off
  a.isolation = IsolationMode::kMprotect;
  EXPECT_TRUE(ShardSet::runs_as_processes(a));
  a.isolation = IsolationMode::kStrict;
  EXPECT_TRUE(ShardSet::runs_as_processes(a));
  a.isolation = IsolationMode::kPkeys;  // a register per thread: no TLB shootdown to avoid
  EXPECT_FALSE(ShardSet::runs_as_processes(a));
  a.isolation = IsolationMode::kMprotect;
  a.shards = 1;
  EXPECT_FALSE(ShardSet::runs_as_processes(a));
  a.shard_mode = ShardMode::kProcesses;
  EXPECT_TRUE(ShardSet::runs_as_processes(a));
  a.shards = 2;
  a.shard_mode = ShardMode::kThreads;
  EXPECT_FALSE(ShardSet::runs_as_processes(a));
}

// Shard processes under wait(), which is what restarts them, running on a thread of its own.
// Each shard's init calls started(): its pid and a count of its inits go to shared memory, and
// an eventfd (a semaphore, made before the forks so every process has it) says one more shard
// has started; on_death can call died() to say so through another one.
class SupervisedShards {
 public:
  struct Report {
    std::atomic<std::uint16_t> port{0};
    std::atomic<int> pid[2]{0, 0};
    std::atomic<int> inits[2]{0, 0};
  };
  SupervisedShards()
      : started_(::eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE)), deaths_(::eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE)) {}
  ~SupervisedShards() {
    if (waiter_.joinable()) stop();
    ::close(started_);
    ::close(deaths_);
  }
  Report& report() { return *report_; }
  // In a shard's init; in on_death.
  void started(Shard& s) {
    report_->pid[s.index()] = ::getpid();
    ++report_->inits[s.index()];
    ::eventfd_write(started_, 1);
  }
  void died() { ::eventfd_write(deaths_, 1); }
  // Starts the set, and wait() on its thread.
  bool start(const Topology& topo, const ShardSetOptions& o, std::string* error) {
    set_ = ShardSet::start(topo, o, error);
    if (set_ == nullptr) return false;
    waiter_ = std::thread([this] { rc_ = set_->wait(); });
    return true;
  }
  // Until one more shard has started / one more death was seen.
  bool await_start() { return await(started_); }
  bool await_death() { return await(deaths_); }
  // Stops the set; wait()'s result.
  int stop() {
    set_->request_stop();
    waiter_.join();
    return rc_;
  }

 private:
  static bool await(int fd) {
    std::uint64_t n;
    return ::eventfd_read(fd, &n) == 0 && n == 1;
  }
  SharedObject<Report> report_;
  int started_;
  int deaths_;
  std::unique_ptr<ShardSet> set_;
  std::thread waiter_;
  int rc_ = -1;
};

TEST(ShardProcessesTest, AKilledShardProcessIsRestartedWhileTheOtherServes) {
  auto topo = topology();
  ShardSetOptions o;
  o.affinity = two_shard_processes(*topo, 512);
  if (o.affinity.shards < 2) GTEST_SKIP() << "needs 2 CPUs";
  SupervisedShards run;
  SupervisedShards::Report& r = run.report();
  o.init = [&run](Shard& s, std::string* error) {
    ServerConfig c = testing::echo_config(512);
    c.reuse_port = true;
    c.port = run.report().port.load();  // 0 for the first shard 0: pick one
    static std::unique_ptr<Server> server;  // (one per shard process)
    server = Server::listen(s.kernel(), c, error);
    if (server == nullptr) return false;
    run.report().port = server->port();
    run.started(s);
    return true;
  };
  std::string error;
  ASSERT_TRUE(run.start(*topo, o, &error)) << error;
  ASSERT_TRUE(run.await_start());
  ASSERT_TRUE(run.await_start());  // both started
  int killed = r.pid[1].load();
  // Shard 1 dies at once, as a shard whose runtime faulted would (abort): its listener and its
  // connections go with it, shard 0 goes on, and wait() starts shard 1 again.
  ASSERT_EQ(::kill(killed, SIGKILL), 0);
  ASSERT_TRUE(run.await_start());  // the new shard 1 has run its init
  EXPECT_EQ(r.inits[1].load(), 2);
  EXPECT_EQ(r.inits[0].load(), 1);
  EXPECT_NE(r.pid[1].load(), killed);
  // Every client is served (one hashed to the dead listener before it is gone connects again).
  int resets = testing::serve_reconnecting(r.port.load(), 200, "c");
  EXPECT_GE(resets, 0) << "a client was never served";
  std::printf("after shard 1 was killed and restarted: 200 clients served (%d connections reset first)\n", resets);
  EXPECT_EQ(run.stop(), 0);  // every shard was up at the end
}

// A shard that keeps dying is restarted kMaxRestarts times within a minute, then left down
// while the others go on; each death is reported to on_death with whether it was restarted.
TEST(ShardProcessesTest, AShardThatKeepsDyingIsRestartedAtMostFiveTimesAMinute) {
  auto topo = topology();
  ShardSetOptions o;
  o.affinity = two_shard_processes(*topo, 64);
  if (o.affinity.shards < 2) GTEST_SKIP() << "needs 2 CPUs";
  SupervisedShards run;
  SupervisedShards::Report& r = run.report();
  o.init = [&run](Shard& s, std::string*) {
    run.started(s);
    return true;
  };
  std::atomic<int> restarted{0}, not_restarted{0};
  o.on_death = [&](std::size_t shard, const std::string& how, bool again) {
    if (shard == 1 && how == "died of SIGKILL (Killed)") ++(again ? restarted : not_restarted);
    run.died();
  };
  std::string error;
  ASSERT_TRUE(run.start(*topo, o, &error)) << error;
  ASSERT_TRUE(run.await_start());
  ASSERT_TRUE(run.await_start());  // both started
  for (int k = 1; k <= ShardSet::kMaxRestarts + 1; ++k) {
    ASSERT_EQ(::kill(r.pid[1].load(), SIGKILL), 0);
    ASSERT_TRUE(run.await_death());  // wait() saw it die
    if (k <= ShardSet::kMaxRestarts) {
      ASSERT_TRUE(run.await_start());  // and started it again
    }
  }
  EXPECT_EQ(restarted.load(), ShardSet::kMaxRestarts);
  EXPECT_EQ(not_restarted.load(), 1);
  EXPECT_EQ(r.inits[1].load(), 1 + ShardSet::kMaxRestarts);
  EXPECT_EQ(r.inits[0].load(), 1);
  EXPECT_EQ(run.stop(), 1);  // shard 1 stayed down (shard 0 stops now)
}

// A shard whose restart hangs in its init (say, it waits on something that never comes) must not
// hold wait(), which supervises the other shards and passes SIGTERM on: after start_timeout_ms
// the starting process is killed and the shard left down; a stop requested meanwhile ends the
// wait at once, limit or not.
void restart_hangs(std::int64_t start_timeout_ms, bool stop_while_starting) {
  auto topo = topology();
  ShardSetOptions o;
  o.affinity = two_shard_processes(*topo, 64);
  if (o.affinity.shards < 2) GTEST_SKIP() << "needs 2 CPUs";
  o.start_timeout_ms = start_timeout_ms;
  SupervisedShards run;
  SupervisedShards::Report& r = run.report();
  o.init = [&run](Shard& s, std::string*) {
    bool again = s.index() == 1 && run.report().inits[1].load() > 0;
    run.started(s);
    while (again) ::pause();  // its second incarnation never finishes starting
    return true;
  };
  std::atomic<int> not_restarted{0};
  o.on_death = [&](std::size_t shard, const std::string&, bool again) {
    if (shard == 1 && !again) ++not_restarted;
    run.died();
  };
  std::string error;
  ASSERT_TRUE(run.start(*topo, o, &error)) << error;
  ASSERT_TRUE(run.await_start());
  ASSERT_TRUE(run.await_start());  // both started
  ASSERT_EQ(::kill(r.pid[1].load(), SIGKILL), 0);
  ASSERT_TRUE(run.await_start());  // its restart began, and hangs
  std::int64_t t0 = monotonic_ns();
  if (stop_while_starting) {
    EXPECT_EQ(run.stop(), 1);  // returns although shard 1 never finished starting
    EXPECT_EQ(not_restarted.load(), 1);
    return;
  }
  ASSERT_TRUE(run.await_death());  // wait() gave up on it
  EXPECT_GE(monotonic_ns() - t0, (start_timeout_ms - 100) * 1'000'000);
  EXPECT_EQ(not_restarted.load(), 1);
  EXPECT_EQ(r.inits[0].load(), 1);  // shard 0 went on
  EXPECT_EQ(run.stop(), 1);         // shard 1 stayed down
}

TEST(ShardProcessesTest, ARestartThatHangsIsKilledAfterTheStartTimeout) { restart_hangs(300, false); }

TEST(ShardProcessesTest, AStopEndsAHungRestartWithoutATimeout) { restart_hangs(0, true); }

// A start that hangs fails after start_timeout_ms, like any failed start: the shards started
// before it are stopped and reaped, and start() says which shard and why.
TEST(ShardProcessesTest, AStartThatHangsFailsAfterTheStartTimeout) {
  auto topo = topology();
  ShardSetOptions o;
  o.affinity = two_shard_processes(*topo, 64);
  if (o.affinity.shards < 2) GTEST_SKIP() << "needs 2 CPUs";
  o.start_timeout_ms = 300;
  o.init = [](Shard& s, std::string*) {
    while (s.index() == 1) ::pause();
    return true;
  };
  std::string error;
  EXPECT_EQ(ShardSet::start(*topo, o, &error), nullptr);
  EXPECT_NE(error.find("shard 1: its process did not finish starting within 300 ms (killed)"), std::string::npos)
      << error;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);  // no child left behind
  EXPECT_EQ(errno, ECHILD);
}

// A micro-thread that never yields holds its shard: with shards as processes wait() kills
// that shard once it has made no progress for restart_stuck_ms, and it is started again; an idle
// shard (asleep in its poller) is left alone.
Thread spin_forever() {
  for (;;) {
  }
  co_return;
}

void start_spinning(const ShardMessage&, void*) {
  static HeapPool spin_pool(4, 4);
  Shard::current()->kernel().start(spin_pool, spin_forever);
}

TEST(ShardProcessesTest, AShardAMicroThreadHoldsIsKilledAndRestarted) {
  auto topo = topology();
  ShardSetOptions o;
  o.affinity = two_shard_processes(*topo, 64);
  if (o.affinity.shards < 2) GTEST_SKIP() << "needs 2 CPUs";
  o.restart_stuck_ms = 500;  // (long enough that a busy machine never starves the idle shard that long)
  SupervisedShards run;
  SupervisedShards::Report& r = run.report();
  o.init = [&run](Shard& s, std::string*) {
    // Shard 0 asks shard 1 to start the spinner (delivered once shard 1 runs, after its init).
    if (s.index() == 0) s.post(1, 5, nullptr, 0);
    if (s.index() == 1) s.on_post(5, start_spinning, nullptr);
    run.started(s);
    return true;
  };
  std::mutex mu;
  std::string how;
  int restarted = 0;
  o.on_death = [&](std::size_t shard, const std::string& h, bool again) {
    if (shard == 1) {
      std::lock_guard<std::mutex> lock(mu);
      how = h;
      if (again) ++restarted;
    }
    run.died();
  };
  std::string error;
  ASSERT_TRUE(run.start(*topo, o, &error)) << error;
  ASSERT_TRUE(run.await_start());
  ASSERT_TRUE(run.await_start());  // both started
  int stuck = r.pid[1].load();
  ASSERT_TRUE(run.await_death());  // killed as stuck
  ASSERT_TRUE(run.await_start());  // and started again
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_NE(how.find("made no progress for 500 ms and was killed as stuck"), std::string::npos) << how;
    EXPECT_EQ(restarted, 1);
  }
  EXPECT_NE(r.pid[1].load(), stuck);
  EXPECT_EQ(r.inits[0].load(), 1);  // the idle shard was left alone
  EXPECT_EQ(run.stop(), 0);
}

// A call whose target shard process dies before it answers ends with ECONNRESET (it has no
// deadline: without this it would wait forever); the next call reaches the restarted shard.
void die_now(const ShardMessage&, ShardMessage*, void*) { ::kill(::getpid(), SIGKILL); }

Thread call_a_dying_shard(CallResults* r) {
  co_await finally(note(r));
  co_await cross_call(1, 7, nullptr, 0, 0);  // shard 1 takes it and dies: raised, lowered
  std::uint64_t v = 21;
  ShardMessage reply = co_await cross_call(1, kDouble, &v, sizeof v, 0);  // the restarted shard 1
  std::uint64_t got;
  std::memcpy(&got, reply.payload, sizeof got);
  if (got == 42) ++r->ok;
  r->done = true;
  Shard::current()->set().request_stop();
}

TEST(ShardProcessesTest, ACallToAShardThatDiesBeforeAnsweringEndsWithEconnreset) {
  auto topo = topology();
  ShardSetOptions o;
  o.affinity = two_shard_processes(*topo);
  if (o.affinity.shards < 2) GTEST_SKIP() << "needs 2 CPUs";
  HeapPool pool(16, 64);
  SharedObject<CallResults> r;
  o.init = [&pool, &r](Shard& s, std::string*) {
    if (s.index() == 1) {
      s.handle(7, die_now, nullptr);
      s.handle(kDouble, double_it, nullptr);
    }
    if (s.index() == 0) s.kernel().start(pool, call_a_dying_shard, r.get());
    return true;
  };
  std::string error;
  auto set = ShardSet::start(*topo, o, &error);
  ASSERT_NE(set, nullptr) << error;
  EXPECT_EQ(set->wait(), 0);  // shard 1 was restarted; the caller stopped the set
  EXPECT_TRUE(r->done);
  EXPECT_EQ(r->reset, 1);
  EXPECT_EQ(r->ok, 1);
  EXPECT_EQ(r->timed_out, 0);
}

// An fd posted to another shard arrives open in its process (threads: the same number; processes:
// a copy passed over a Unix socket, the sender's closed) with the message's payload.
struct FdPostReport {
  std::atomic<int> got{0};       // bytes the receiver read from the fd
  std::atomic<bool> match{false};
  std::atomic<int> sender_fd_open{-1};  // (processes) whether the sender's copy was closed
};

void read_posted(const ShardMessage& m, void*) {
  SharedObject<FdPostReport>* report;
  std::memcpy(&report, m.payload, sizeof report);
  int fd = Shard::posted_fd(m);
  char buf[16] = {};
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  (*report)->got = static_cast<int>(n);
  (*report)->match = n == 5 && std::memcmp(buf, "fd ok", 5) == 0;
  Shard::current()->set().request_stop();
}

TEST_P(ShardModeTest, APostedFdArrivesOpenWithItsMessage) {
  auto topo = topology();
  ShardSetOptions o;
  o.affinity = config(*topo);
  if (o.affinity.shards < 2) GTEST_SKIP() << "needs 2 CPUs";
  SharedObject<FdPostReport> r;
  o.init = [&r](Shard& s, std::string* error) {
    if (s.index() == 1) s.on_post(6, read_posted, nullptr);
    if (s.index() != 0) return true;
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0 || ::write(p[1], "fd ok", 5) != 5) {
      *error = "pipe";
      return false;
    }
    ::close(p[1]);
    SharedObject<FdPostReport>* payload = &r;  // (a pointer into the shared mapping: valid in every shard)
    if (!s.post_fd(1, 6, p[0], &payload, sizeof payload)) {
      *error = "post_fd refused";
      return false;
    }
    r->sender_fd_open = ::fcntl(p[0], F_GETFD) != -1 ? 1 : 0;
    return true;
  };
  std::string error;
  auto set = ShardSet::start(*topo, o, &error);
  ASSERT_NE(set, nullptr) << error;
  EXPECT_EQ(set->wait(), 0);
  EXPECT_EQ(r->got.load(), 5);
  EXPECT_TRUE(r->match.load());
  // Threads share the fd (the receiver closed it); a process's copy is closed once sent.
  EXPECT_EQ(r->sender_fd_open.load(), GetParam() == ShardMode::kProcesses ? 0 : 1);
}

INSTANTIATE_TEST_SUITE_P(Modes, ShardModeTest, ::testing::Values(ShardMode::kThreads, ShardMode::kProcesses), mode_name);

}  // namespace
}  // namespace mnv
