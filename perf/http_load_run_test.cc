// perf/http_load_run's loops against a raw server in the test (a thread per connection with
// blocking sockets, answering every request head with a canned response): the closed loop counts
// and checks every response; the open loop sends exactly its schedule, keeps latency (from the
// intended send time) and service time (from the actual one) apart, and calls a run invalid when
// the server cannot take the offered load.
#include "perf/http_load_run.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

namespace mnv::perf {
namespace {

constexpr std::string_view kPlain = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!";

// Accepts `conns` connections; each gets a thread that answers every request head with kPlain
// (or, with `answer` false, reads and never answers) until the client closes.
class RawServer {
 public:
  RawServer(int conns, bool answer) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), len), 0);
    EXPECT_EQ(::listen(listen_fd_, 64), 0);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this, conns, answer] {
      for (int i = 0; i < conns; ++i) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;
        workers_.emplace_back([fd, answer] {
          serve(fd, answer);
          ::close(fd);
        });
      }
    });
  }
  ~RawServer() {
    acceptor_.join();
    for (std::thread& t : workers_) t.join();
    ::close(listen_fd_);
  }
  int port() const { return port_; }

 private:
  static void serve(int fd, bool answer) {
    char buf[4096];
    char out[16 * 64];
    int match = 0;
    for (;;) {
      ssize_t k = ::read(fd, buf, sizeof buf);
      if (k <= 0) return;
      int heads = 0;
      for (ssize_t i = 0; i < k; ++i) {
        static constexpr char kEnd[] = "\r\n\r\n";
        match = buf[i] == kEnd[match] ? match + 1 : (buf[i] == '\r' ? 1 : 0);
        if (match == 4) {
          ++heads;
          match = 0;
        }
      }
      while (answer && heads > 0) {
        int m = heads < 16 ? heads : 16;
        for (int j = 0; j < m; ++j) std::memcpy(out + j * kPlain.size(), kPlain.data(), kPlain.size());
        std::size_t n = m * kPlain.size(), done = 0;
        while (done < n) {
          ssize_t w = ::write(fd, out + done, n - done);
          if (w <= 0) return;
          done += static_cast<std::size_t>(w);
        }
        heads -= m;
      }
    }
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

TEST(HttpLoadRunTest, ClosedLoopCountsAndChecksEveryResponse) {
  RawServer server(3, true);
  HttpLoadOptions opt;
  opt.port = server.port();
  opt.connections = 3;
  opt.depth = 8;
  opt.requests = 3000;
  opt.expect_body = "Hello, World!";
  HttpLoadResult r = run_closed_loop(opt);
  EXPECT_EQ(r.errors(), 0u) << r.first_error;
  EXPECT_EQ(r.responses, 3000u);
  EXPECT_EQ(r.connections_ok, 3);
  EXPECT_GT(r.requests_per_s, 0);
  EXPECT_GT(r.p50_ns, 0u);
  EXPECT_LE(r.p50_ns, r.p99_ns);
  EXPECT_LE(r.p99_ns, r.max_ns);
}

TEST(HttpLoadRunTest, ClosedLoopCountsAWrongStatus) {
  RawServer server(1, true);
  HttpLoadOptions opt;
  opt.port = server.port();
  opt.connections = 1;
  opt.requests = 10;
  opt.expect_status = 404;
  HttpLoadResult r = run_closed_loop(opt);
  EXPECT_EQ(r.bad_status, 10u);
  EXPECT_EQ(r.conn_errors, 0u);
}

TEST(HttpLoadRunTest, OpenLoopSendsItsScheduleAndKeepsServiceTimeApart) {
  RawServer server(2, true);
  HttpLoadOptions opt;
  opt.port = server.port();
  opt.connections = 2;
  opt.rate = 1000;
  opt.duration_s = 1.0;
  opt.expect_body = "Hello, World!";
  HttpLoadResult r = run_open_loop(opt);
  EXPECT_EQ(r.errors(), 0u) << r.first_error;
  EXPECT_EQ(r.sent, 1000u);
  EXPECT_EQ(r.unsent, 0u);
  EXPECT_EQ(r.responses, 1000u);
  EXPECT_EQ(r.target_rate, 1000);
  // The last of 1000 sends is due 999 ms after the first: the schedule is absolute, so the
  // achieved rate is at most a hair above the target (a send is never early) ...
  EXPECT_LE(r.achieved_rate, 1000 * 1.0005);
  EXPECT_GT(r.achieved_rate, 900);
  // ... and the run is valid exactly when it is within 0.5% of it.
  EXPECT_EQ(r.valid, r.achieved_rate >= 1000 * 0.995) << describe(r);
  // Latency counts from the intended send time, service time from the actual one (later or equal).
  EXPECT_GE(r.p50_ns, r.service_p50_ns);
  EXPECT_GE(r.max_ns, r.service_max_ns);
  EXPECT_GT(r.service_p50_ns, 0u);
  // Late sends are those that lagged more than late_us (1 ms); the largest lag is reported.
  if (r.late_sends > 0) {
    EXPECT_GT(r.max_lag_ns, 1'000'000);
  } else {
    EXPECT_LE(r.max_lag_ns, 1'000'000);
  }
}

TEST(HttpLoadRunTest, OpenLoopIsInvalidWhenTheServerFallsBehind) {
  // A server that reads and never answers: each connection fills its 256 outstanding requests,
  // then the rest of the schedule cannot be sent and the responses time out.
  RawServer server(1, false);
  HttpLoadOptions opt;
  opt.port = server.port();
  opt.connections = 1;
  opt.rate = 20000;
  opt.duration_s = 0.1;
  opt.timeout_s = 0.3;
  HttpLoadResult r = run_open_loop(opt);
  EXPECT_FALSE(r.valid) << describe(r);
  EXPECT_EQ(r.sent, 256u);
  EXPECT_EQ(r.unsent, 2000u - 256u);
  EXPECT_EQ(r.conn_errors, 1u);
  EXPECT_NE(r.first_error.find("response 1: no complete head within 300 ms"), std::string::npos) << r.first_error;
  EXPECT_NE(describe(r).find("INVALID RUN"), std::string::npos);
}

}  // namespace
}  // namespace mnv::perf
