// The bidder allocates nothing from the global heap per bid request in steady state: the whole
// server (shard/server.h with apps/rtb/bidder.h) runs in this process, one shard, and a client
// that allocates nothing itself posts bid requests on one keep-alive connection — bids (parse,
// auction, cap, reservation, three signed notice URLs, the response), gzip in and out, no-bids,
// and win notices — while global_alloc_counter counts every operator new and malloc.
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
#include <string>
#include <thread>
#include <vector>

#include "apps/rtb/bidder.h"
#include "apps/rtb/serve_testing.h"
#include "runtime/global_alloc_counter.h"
#include "shard/server.h"

namespace {

using mnv::rtb::testing::gzip;
using mnv::rtb::testing::runfile;
using mnv::rtb::testing::slurp;



// Sends `req` and reads one response into buf; returns its status (0 on failure). No allocation.
int call(int fd, const std::string& req, char* buf, std::size_t cap) {
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

std::string post(const std::string& body, const std::string& extra = "") {
  return "POST /openrtb2/bid HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         extra + "\r\n" + body;
}


TEST(RtbAllocTest, ABidRequestAllocatesNothingInSteadyState) {
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
  std::vector<char> buf(1 << 20);
  auto round = [&](int n, int* bids) {
    for (int i = 0; i < n; ++i) {
      int status = call(fd, reqs[static_cast<std::size_t>(i) % reqs.size()], buf.data(), buf.size());
      if (status == 200) ++*bids;
      if (status != 200 && status != 204) return false;
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
  ::close(fd);

  ::kill(::getpid(), SIGTERM);
  server.join();
  EXPECT_EQ(rc, 0);
}

}  // namespace
