// The Redis connection (redis/connection.h) and scripts (redis/script.h) against a real
// redis-server that the test starts on a loopback port: pipelining with replies in order, server
// error replies, deadlines (a SIGSTOPped server), reconnect after the server restarts (with the
// back-off refusing at once), back-pressure (EBUSY at max_in_flight), EVALSHA with the SCRIPT
// LOAD fallback after SCRIPT FLUSH, replies across the ring's wrap and larger than it, a server
// that sends something that is not RESP, and 1,000 pipelined calls with no global allocation.
// Once per poller backend.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "mem/heap_pool.h"
#include "net/io.h"
#include "redis/connection.h"
#include "redis/script.h"
#include "runtime/global_alloc_counter.h"
#include "runtime/kernel.h"
#include "tests/redis_server.h"

namespace mnv::redis {
namespace {

using mnv::testing::RedisServer;

struct Backend {
  PollerKind kind;
  bool completion_io;
};

std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  std::string name = poller_name(info.param.kind);
  if (info.param.kind == PollerKind::kIoUring && !info.param.completion_io) name += "_readiness";
  return name;
}

std::string text(const Reply& r) {
  std::string s(r.str().size(), '\0');
  r.str().copy(0, s.size(), s.data());
  return s;
}

struct Ctx {
  RedisServer* server = nullptr;
  sockaddr_in addr{};
  bool finished = false;
};

class RedisClientTest : public ::testing::TestWithParam<Backend> {
 protected:
  // Runs fn(connection, ctx) in a micro-thread of a kernel until it ends.
  template <typename F>
  void run(const ConnectionOptions& opt, F fn, Ctx* ctx) {
    KernelConfig kc;
    kc.poller = GetParam().kind;
    kc.completion_io = GetParam().completion_io;
    kc.max_fds = 256;
    kc.max_processes = 16;
    kc.exit_when_idle = true;
    auto k = Kernel::create(kc);
    ASSERT_NE(k, nullptr);
    k->start(pool_, thread_main<F>, &opt, &fn, ctx);
    k->run();
    EXPECT_TRUE(ctx->finished) << "the client thread did not finish";
  }

  template <typename F>
  static Thread thread_main(const ConnectionOptions* opt, F* fn, Ctx* ctx) {
    Connection c(*opt);
    c.set_address(reinterpret_cast<const sockaddr*>(&ctx->addr), sizeof ctx->addr);
    co_await (*fn)(c, *ctx);
    ctx->finished = true;
  }

  void SetUp() override {
    ASSERT_TRUE(server_.ok()) << "redis-server did not start (is /usr/bin/redis-server installed?)";
    ctx_.server = &server_;
    ctx_.addr = server_.addr();
  }

  HeapPool pool_{16, 64};
  RedisServer server_;
  Ctx ctx_;
};

TEST_P(RedisClientTest, PipelinedRepliesComeBackInOrder) {
  run({}, [](Connection& c, Ctx&) -> Task<> {
    char key[32], val[32];
    for (int i = 0; i < 100; ++i) {
      std::snprintf(key, sizeof key, "k%d", i);
      std::snprintf(val, sizeof val, "v%d", i);
      EXPECT_EQ(co_await c.send_args("SET", key, val), 0);
    }
    for (int i = 0; i < 100; ++i) {
      std::snprintf(key, sizeof key, "k%d", i);
      EXPECT_EQ(co_await c.send_args("GET", key), 0);
    }
    for (int i = 0; i < 50; ++i) EXPECT_EQ(co_await c.send_args("INCR", "counter"), 0);
    EXPECT_EQ(c.in_flight(), 250u);
    Reply r;
    for (int i = 0; i < 100; ++i) {
      EXPECT_EQ(co_await c.receive(&r), 0);
      EXPECT_EQ(r.type(), Type::kSimpleString);
      EXPECT_EQ(text(r), "OK");
    }
    for (int i = 0; i < 100; ++i) {
      EXPECT_EQ(co_await c.receive(&r), 0);
      EXPECT_EQ(text(r), "v" + std::to_string(i));
    }
    for (int i = 1; i <= 50; ++i) {
      EXPECT_EQ(co_await c.receive(&r), 0);
      EXPECT_EQ(r.integer(), i);
    }
    EXPECT_EQ(c.in_flight(), 0u);
    EXPECT_EQ(co_await c.receive(&r), EINVAL);
    EXPECT_EQ(c.stats().connects, 1u);
  }, &ctx_);
}

TEST_P(RedisClientTest, ServerErrorRepliesAreRepliesAndTheConnectionGoesOn) {
  run({}, [](Connection& c, Ctx&) -> Task<> {
    Reply r;
    EXPECT_EQ(co_await c.call_args(&r, "NOSUCHCOMMAND", "x"), 0);
    EXPECT_TRUE(r.is_error());
    EXPECT_TRUE(r.str().starts_with("ERR unknown command")) << text(r);
    EXPECT_EQ(co_await c.call_args(&r, "SET", "s", "not a number"), 0);
    EXPECT_EQ(co_await c.call_args(&r, "INCR", "s"), 0);
    EXPECT_TRUE(r.is_error());
    EXPECT_TRUE(r.str().starts_with("ERR value is not an integer")) << text(r);
    EXPECT_EQ(co_await c.call_args(&r, "LPUSH", "s", "x"), 0);
    EXPECT_TRUE(r.str().starts_with("WRONGTYPE")) << text(r);
    EXPECT_EQ(co_await c.call_args(&r, "PING"), 0);
    EXPECT_EQ(text(r), "PONG");
    EXPECT_EQ(co_await c.call_args(&r, "GET", "missing"), 0);
    EXPECT_TRUE(r.is_null());
    EXPECT_EQ(c.stats().connects, 1u);
    EXPECT_EQ(c.stats().drops, 0u);
  }, &ctx_);
}

TEST_P(RedisClientTest, AStoppedServerTimesOutTheCallAndThoseBehindIt) {
  ConnectionOptions opt;
  opt.call_timeout_ns = 150'000'000;
  run(opt, [](Connection& c, Ctx& x) -> Task<> {
    Reply r;
    EXPECT_EQ(co_await c.call_args(&r, "PING"), 0);
    x.server->pause();  // alive, answering nothing
    std::int64_t t0 = monotonic_ns();
    for (int i = 0; i < 3; ++i) EXPECT_EQ(co_await c.send_args("INCR", "n"), 0);
    EXPECT_EQ(co_await c.receive(&r), ETIMEDOUT);
    std::int64_t waited = monotonic_ns() - t0;
    EXPECT_GE(waited, 150'000'000);
    EXPECT_LT(waited, 2'000'000'000);
    EXPECT_NE(std::string(c.why()).find("no reply within 150 ms"), std::string::npos) << c.why();
    EXPECT_FALSE(c.connected());
    EXPECT_EQ(co_await c.receive(&r), ECONNABORTED);
    EXPECT_EQ(co_await c.receive(&r), ECONNABORTED);
    EXPECT_NE(std::string(c.why()).find("lost with the connection"), std::string::npos) << c.why();
    EXPECT_EQ(c.in_flight(), 0u);
    x.server->resume();
    EXPECT_EQ(co_await c.call_args(&r, "PING"), 0);  // a new connection
    EXPECT_EQ(text(r), "PONG");
    EXPECT_EQ(c.stats().connects, 2u);
    // The three INCRs were sent before the stop: the server ran them once it went on.
    EXPECT_EQ(co_await c.call_args(&r, "GET", "n"), 0);
    EXPECT_EQ(text(r), "3");
  }, &ctx_);
}

TEST_P(RedisClientTest, ReconnectsAfterTheServerRestartsAndBacksOffMeanwhile) {
  ConnectionOptions opt;
  opt.backoff_min_ns = 200'000'000;
  opt.backoff_max_ns = 400'000'000;
  run(opt, [](Connection& c, Ctx& x) -> Task<> {
    Reply r;
    EXPECT_EQ(co_await c.call_args(&r, "SET", "a", "1"), 0);
    x.server->stop();
    int e = co_await c.call_args(&r, "PING");  // the old connection: reset or closed
    EXPECT_TRUE(e == ECONNRESET || e == EPIPE) << std::strerror(e) << ": " << c.why();
    e = co_await c.call_args(&r, "PING");  // a new one: nobody listens
    EXPECT_EQ(e, ECONNREFUSED) << c.why();
    std::uint64_t refused = c.stats().refused;
    e = co_await c.call_args(&r, "PING");  // within the back-off: refused at once
    EXPECT_EQ(e, ECONNREFUSED);
    EXPECT_EQ(c.stats().refused, refused + 1);
    EXPECT_NE(std::string(c.why()).find("next attempt in"), std::string::npos) << c.why();
    EXPECT_TRUE(x.server->start());
    int ok_after = -1;
    for (int i = 0; i < 100 && ok_after < 0; ++i) {
      if (co_await c.call_args(&r, "PING") == 0) ok_after = i;
      else co_await sleep_for(50'000'000);
    }
    EXPECT_GE(ok_after, 0) << c.why();
    EXPECT_EQ(text(r), "PONG");
    EXPECT_EQ(c.stats().connects, 2u);
    EXPECT_GE(c.stats().connect_failures, 1u);
  }, &ctx_);
}

TEST_P(RedisClientTest, BackPressureRefusesCommandsOverMaxInFlight) {
  ConnectionOptions opt;
  opt.max_in_flight = 4;
  run(opt, [](Connection& c, Ctx&) -> Task<> {
    for (int i = 0; i < 4; ++i) EXPECT_EQ(co_await c.send_args("PING"), 0);
    EXPECT_EQ(co_await c.send_args("PING"), EBUSY);
    EXPECT_NE(std::string(c.why()).find("max_in_flight"), std::string::npos) << c.why();
    EXPECT_EQ(c.stats().refused, 1u);
    EXPECT_EQ(c.in_flight(), 4u);
    Reply r;
    EXPECT_EQ(co_await c.receive(&r), 0);
    EXPECT_EQ(co_await c.send_args("ECHO", "fifth"), 0);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(co_await c.receive(&r), 0);
      EXPECT_EQ(text(r), "PONG");
    }
    EXPECT_EQ(co_await c.receive(&r), 0);
    EXPECT_EQ(text(r), "fifth");
  }, &ctx_);
}

TEST_P(RedisClientTest, EvalshaLoadsTheScriptAgainAfterNoscript) {
  run({}, [](Connection& c, Ctx&) -> Task<> {
    Script add("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    Reply r;
    const std::string_view keys[] = {"ctr"};
    Int five(5), seven(7), one(1);
    const std::string_view by5[] = {five}, by7[] = {seven}, by1[] = {one};
    EXPECT_EQ(co_await add.eval(c, keys, by5, &r), 0);
    EXPECT_EQ(r.integer(), 5);
    EXPECT_EQ(co_await add.eval(c, keys, by7, &r), 0);
    EXPECT_EQ(r.integer(), 12);
    EXPECT_EQ(add.loads(), 1u);
    EXPECT_EQ(add.sha().size(), 40u);
    EXPECT_EQ(co_await c.call_args(&r, "SCRIPT", "FLUSH"), 0);
    EXPECT_EQ(co_await add.eval(c, keys, by1, &r), 0);  // NOSCRIPT, load, again
    EXPECT_EQ(r.integer(), 13);
    EXPECT_EQ(add.loads(), 2u);
    Script bad("return redis.call('NOSUCHCOMMAND')");
    EXPECT_EQ(co_await bad.eval(c, {}, {}, &r), 0);
    EXPECT_TRUE(r.is_error()) << text(r);
    Script syntax("this is not lua");
    EXPECT_EQ(co_await syntax.eval(c, {}, {}, &r), 0);
    EXPECT_TRUE(r.is_error()) << text(r);
  }, &ctx_);
}

TEST_P(RedisClientTest, RepliesAcrossTheWrapAndOneLargerThanTheRing) {
  run({}, [](Connection& c, Ctx&) -> Task<> {
    std::string value(3000, 'x');
    for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>('a' + i % 26);
    Reply r;
    EXPECT_EQ(co_await c.call_args(&r, "SET", "big", value), 0);
    for (int i = 0; i < 6; ++i) {  // each reply starts where the last ended: they wrap
      EXPECT_EQ(co_await c.send_args("GET", "big"), 0);
      EXPECT_EQ(co_await c.send_args("PING"), 0);
    }
    int wrapped = 0;
    for (int i = 0; i < 6; ++i) {
      EXPECT_EQ(co_await c.receive(&r), 0);
      wrapped += r.str().contiguous() ? 0 : 1;
      EXPECT_TRUE(r.str() == value);
      EXPECT_EQ(co_await c.receive(&r), 0);
      EXPECT_EQ(text(r), "PONG");
    }
    EXPECT_GT(wrapped, 0);
    std::string huge(10000, 'h');  // the command streams through the send ring
    EXPECT_EQ(co_await c.call_args(&r, "SET", "huge", huge), 0);
    EXPECT_EQ(text(r), "OK");
    EXPECT_EQ(co_await c.call_args(&r, "STRLEN", "huge"), 0);
    EXPECT_EQ(r.integer(), 10000);
    EXPECT_EQ(co_await c.call_args(&r, "GET", "huge"), EMSGSIZE);
    EXPECT_NE(std::string(c.why()).find("larger than the receive ring"), std::string::npos) << c.why();
    EXPECT_EQ(co_await c.call_args(&r, "PING"), 0);
    EXPECT_EQ(c.stats().connects, 2u);
  }, &ctx_);
}

TEST_P(RedisClientTest, PipelinedCallsAllocateNothingGlobal) {
  run({}, [](Connection& c, Ctx&) -> Task<> {
    Reply r;
    long before = 0;
    for (int round = 0; round < 110; ++round) {
      if (round == 10) before = global_allocations();
      for (int i = 0; i < 10; ++i) EXPECT_EQ(co_await c.send_args("INCR", "hot"), 0);
      for (int i = 0; i < 10; ++i) EXPECT_EQ(co_await c.receive(&r), 0);
    }
    EXPECT_EQ(global_allocations() - before, 0);
    EXPECT_EQ(r.integer(), 1100);
  }, &ctx_);
}

// Not Redis at all: the reply is refused with EPROTO and the byte where it went wrong.
TEST_P(RedisClientTest, ANonRespReplyIsEproto) {
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&a), len), 0);
  ASSERT_EQ(::listen(lfd, 4), 0);
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  std::thread raw([lfd] {
    int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    char buf[256];
    if (::read(fd, buf, sizeof buf) > 0) (void)!::write(fd, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
    (void)!::read(fd, buf, sizeof buf);  // until the client closes
    ::close(fd);
  });
  ctx_.addr = a;
  run({}, [](Connection& c, Ctx&) -> Task<> {
    Reply r;
    EXPECT_EQ(co_await c.call_args(&r, "PING"), EPROTO);
    EXPECT_NE(std::string(c.why()).find("not RESP"), std::string::npos) << c.why();
    EXPECT_FALSE(c.connected());
  }, &ctx_);
  raw.join();
  ::close(lfd);
}

INSTANTIATE_TEST_SUITE_P(Backends, RedisClientTest,
                         ::testing::Values(Backend{PollerKind::kIoUring, true}, Backend{PollerKind::kIoUring, false},
                                           Backend{PollerKind::kEpoll, false}),
                         backend_name);

}  // namespace
}  // namespace mnv::redis
