// The bidder allocates nothing from the global heap per bid request in steady state: the whole
// server (shard/server.h with apps/rtb/bidder.h) runs in this process, one shard, and a client
// that allocates nothing itself posts bid requests on one keep-alive connection — bids (parse,
// auction, cap, reservation, three signed notice URLs, the response), gzip in and out, no-bids,
// and win notices — while global_alloc_counter counts every operator new and malloc.
// rtb_alloc_redis_caps_test runs the same with RTB_ALLOC_CAPS=redis: a real redis-server
// (tests/redis_server.h), [rtb] caps = "redis" with caps_cache_ms = 0, so every capped check
// reads Redis (MGET) and every win of a capped campaign increments there (INCR + EXPIRE): Redis's
// own command counts say they happened.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "apps/rtb/bidder.h"
#include "apps/rtb/serve_testing.h"
#include "runtime/global_alloc_counter.h"
#include "shard/server.h"
#include "tests/redis_server.h"

namespace {

using mnv::rtb::testing::gzip;
using mnv::rtb::testing::runfile;
using mnv::rtb::testing::slurp;



// Sends `req` and reads one response into buf; returns its status (0 on failure). No allocation.
int call(int fd, std::string_view req, char* buf, std::size_t cap) {
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return 0;
  std::size_t have = 0;
  const char* end = nullptr;
  for (;;) {
    ssize_t n = ::recv(fd, buf + have, cap - have, 0);
    if (n <= 0) return 0;
    have += static_cast<std::size_t>(n);
    end = static_cast<const char*>(::memmem(buf, have, "\r\n\r\n", 4));
    if (end != nullptr) break;
  }
  std::size_t head = static_cast<std::size_t>(end - buf) + 4;
  std::size_t len = 0;
  const char* cl = static_cast<const char*>(::memmem(buf, head, "Content-Length: ", 16));
  if (cl != nullptr) len = static_cast<std::size_t>(std::strtoul(cl + 16, nullptr, 10));
  while (have < head + len) {
    ssize_t n = ::recv(fd, buf + have, cap - have, 0);
    if (n <= 0) return 0;
    have += static_cast<std::size_t>(n);
  }
  return std::atoi(buf + 9);
}

// The win notice of the bid in `response` (its nurl, priced 0.5) into out as a GET request; its
// length, 0 if there is none. No allocation.
std::size_t win_request(const char* response, std::size_t len, char* out, std::size_t cap) {
  const char* nurl = static_cast<const char*>(::memmem(response, len, "\"nurl\":\"http://", 15));
  if (nurl == nullptr) return 0;
  const char* path = static_cast<const char*>(std::memchr(nurl + 15, '/', len - static_cast<std::size_t>(nurl + 15 - response)));
  const char* end = path != nullptr ? static_cast<const char*>(std::memchr(path, '"', len - static_cast<std::size_t>(path - response))) : nullptr;
  if (end == nullptr) return 0;
  std::size_t n = 0;
  auto put = [&](const char* p, std::size_t k) {
    if (n + k <= cap) std::memcpy(out + n, p, k);
    n += k;
  };
  put("GET ", 4);
  const char* macro = static_cast<const char*>(::memmem(path, static_cast<std::size_t>(end - path), "${AUCTION_PRICE}", 16));
  if (macro == nullptr) return 0;
  put(path, static_cast<std::size_t>(macro - path));
  put("0.5", 3);
  put(macro + 16, static_cast<std::size_t>(end - macro - 16));
  const char tail[] = " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  put(tail, sizeof tail - 1);
  return n <= cap ? n : 0;
}

std::string post(const std::string& body, const std::string& extra = "") {
  return "POST /openrtb2/bid HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         extra + "\r\n" + body;
}


TEST(RtbAllocTest, ABidRequestAllocatesNothingInSteadyState) {
  const char* caps = std::getenv("RTB_ALLOC_CAPS");
  bool redis_caps = caps != nullptr && std::string(caps) == "redis";
  // (Started before SIGTERM is blocked below: a child inherits the mask, and redis-server must
  // stop on it.)
  std::unique_ptr<mnv::testing::RedisServer> redis;
  if (redis_caps) {
    redis = std::make_unique<mnv::testing::RedisServer>();
    ASSERT_TRUE(redis->ok()) << "redis-server did not start (Debian redis-server)";
  }
  // The skeleton reads SIGTERM with sigwait on its own thread: block it here too, so the signal
  // that stops it is not this thread's (default: death).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &set, nullptr), 0);

  // The skeleton's first stdout line says the port: read it from a pipe put in stdout's place.
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  std::fflush(stdout);
  int saved = ::dup(STDOUT_FILENO);
  ::dup2(out[1], STDOUT_FILENO);
  ::close(out[1]);

  std::vector<std::string> args = {"rtb", "--port=0", "--shards=1", "--shard_mode=threads", "--grace_ms=300",
                                   "--shed_lag_ms=10000", "--campaigns=" + runfile("apps/rtb/campaigns.toml"),
                                   "--hmac_key=test-key-0123456789abcdef"};
  if (redis_caps) {
    args.push_back("--redis=127.0.0.1:" + std::to_string(redis->port()));
    args.push_back("--caps=redis");
    args.push_back("--caps_cache_ms=0");
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int rc = -1;
  std::thread server([&] { rc = mnv::run_server(static_cast<int>(argv.size() - 1), argv.data(), mnv::rtb::service()); });
  char line[128] = {};
  std::size_t got = 0;
  while (got < sizeof line - 1) {
    ssize_t n = ::read(out[0], line + got, 1);
    if (n <= 0 || line[got] == '\n') break;
    ++got;
  }
  std::fflush(stdout);
  ::dup2(saved, STDOUT_FILENO);
  ::close(saved);
  ::close(out[0]);
  unsigned port = 0;
  ASSERT_EQ(std::sscanf(line, "listening on 127.0.0.1:%u", &port), 1) << line;

  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  std::string banner = slurp(runfile("apps/rtb/testdata/banner.json"));
  std::string floor = banner;
  floor.replace(floor.find("\"bidfloor\": 0.03"), 16, "\"bidfloor\": 990");
  std::vector<std::string> reqs = {
      post(banner),
      post(slurp(runfile("apps/rtb/testdata/multi_imp.json"))),
      post(slurp(runfile("apps/rtb/testdata/app.json"))),
      post(gzip(banner), "Content-Encoding: gzip\r\nAccept-Encoding: gzip\r\n"),
      post(floor),  // a no-bid
  };
  std::string video = slurp(runfile("apps/rtb/testdata/video.json"));
  std::vector<std::string> videos;
  for (int u = 0; u < 1'000; ++u) {
    std::string v = video;
    char id[24];
    std::snprintf(id, sizeof id, "vid-%06d", u);
    v.replace(v.find("user-vid-1"), 10, id);
    videos.push_back(post(v));
  }
  std::vector<char> buf(1 << 20);
  std::vector<char> win(4096), win_buf(4096);
  int wins = 0;
  auto round = [&](int n, int* bids) {
    for (int i = 0; i < n; ++i) {
      // Every fifth request is a video one for a user of its own (stark-auto-video, capped at 3
      // a user, bids): its win is that user's first or second impression, counted (INCR).
      const std::string& req = i % 5 == 0 ? videos[static_cast<std::size_t>(i / 5) % videos.size()]
                                          : reqs[static_cast<std::size_t>(i) % reqs.size()];
      int status = call(fd, req, buf.data(), buf.size());
      if (status == 200) ++*bids;
      if (status != 200 && status != 204) return false;
      if (status != 200 || i % 5 == 3) continue;  // (the gzip answer's nurl is compressed)
      std::size_t wn = win_request(buf.data(), buf.size(), win.data(), win.size());
      if (wn == 0) return false;
      if (call(fd, std::string_view(win.data(), wn), win_buf.data(), win_buf.size()) != 200) return false;
      ++wins;
    }
    return true;
  };
  int bids = 0;
  ASSERT_TRUE(round(500, &bids));  // warm-up: every lazily grown buffer has grown
  long before = mnv::global_allocations();
  ASSERT_GT(before, 0);  // (the counter is linked: this test's own set-up allocated)
  ASSERT_TRUE(round(5'000, &bids));
  long allocations = mnv::global_allocations() - before;
  EXPECT_EQ(allocations, 0) << "global allocations in 5,000 bid requests";
  EXPECT_GT(bids, 3'000);
  EXPECT_GT(wins, 2'000);
  if (redis_caps) {  // (after the count) The measured requests did use Redis.
    std::string stats = redis->cli("INFO commandstats");
    auto calls = [&](const std::string& cmd) {
      std::size_t at = stats.find("cmdstat_" + cmd + ":calls=");
      return at == std::string::npos ? 0L : std::atol(stats.c_str() + at + cmd.size() + 15);
    };
    std::printf("redis: %ld MGET, %ld INCR, %ld EXPIRE\n", calls("mget"), calls("incr"), calls("expire"));
    EXPECT_GT(calls("mget"), 2'000);
    EXPECT_GT(calls("incr"), 1'000);
    EXPECT_EQ(calls("expire"), calls("incr"));
  }
  ::close(fd);

  ::kill(::getpid(), SIGTERM);
  server.join();
  EXPECT_EQ(rc, 0);
}

}  // namespace
