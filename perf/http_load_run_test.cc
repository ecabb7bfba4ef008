// perf/http_load_run's loops against a raw server in the test (a thread per connection with
// blocking sockets, answering every request head with a canned response): the closed loop counts
// and checks every response; the open loop sends exactly its schedule, keeps latency (from the
// intended send time) and service time (from the actual one) apart, and calls a run invalid when
// the server cannot take the offered load; it keeps its schedule within 1% over 10 s; a server
// stalled for 1 s shows in the open loop's latencies as about R late answers spread up to 1 s
// (coordinated omission corrected), where a closed loop sees one late answer per connection;
// statuses are counted, late answers are timeouts, and bids get win notices.
#include "perf/http_load_run.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace mnv::perf {
namespace {

constexpr std::string_view kPlain = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!";

struct RawServerOptions {
  int conns = 1;
  bool answer = true;                   // false: read and never answer
  std::string_view response = kPlain;   // the answer to every request
  int pause_after = 0;                  // > 0: after this many requests (all connections) ...
  int pause_ms = 0;                     // ... stop answering for this long (a stalled server)
  // When set, the answer to the n-th request (1, 2, ...) instead of `response`.
  std::function<std::string(int)> respond;
};

RawServerOptions with_conns(int conns, bool answer = true) {
  RawServerOptions o;
  o.conns = conns;
  o.answer = answer;
  return o;
}

// `conns` connections to a server that stalls for pause_ms after pause_after requests.
RawServerOptions stalling(int conns, int pause_after, int pause_ms) {
  RawServerOptions o = with_conns(conns);
  o.pause_after = pause_after;
  o.pause_ms = pause_ms;
  return o;
}

// Accepts `conns` connections; each gets a thread that answers every request head with the
// canned response until the client closes. Keeps everything it read (inputs()).
class RawServer {
 public:
  explicit RawServer(RawServerOptions o) : o_(o) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), len), 0);
    EXPECT_EQ(::listen(listen_fd_, 64), 0);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] {
      for (int i = 0; i < o_.conns; ++i) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;
        workers_.emplace_back([this, fd] {
          serve(fd);
          ::close(fd);
        });
      }
    });
  }
  RawServer(int conns, bool answer) : RawServer(with_conns(conns, answer)) {}
  ~RawServer() { join(); }
  void join() {
    if (acceptor_.joinable()) acceptor_.join();
    for (std::thread& t : workers_) {
      if (t.joinable()) t.join();
    }
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
  }
  int port() const { return port_; }
  std::string inputs() {
    std::lock_guard<std::mutex> l(mu_);
    return inputs_;
  }

 private:
  void serve(int fd) {
    char buf[4096];
    std::string out;
    std::string input;
    int match = 0;
    for (;;) {
      ssize_t k = ::read(fd, buf, sizeof buf);
      if (k <= 0) break;
      input.append(buf, static_cast<std::size_t>(k));
      int heads = 0;
      for (ssize_t i = 0; i < k; ++i) {
        static constexpr char kEnd[] = "\r\n\r\n";
        match = buf[i] == kEnd[match] ? match + 1 : (buf[i] == '\r' ? 1 : 0);
        if (match == 4) {
          ++heads;
          match = 0;
        }
      }
      if (!o_.answer || heads == 0) continue;
      if (o_.pause_after > 0) {
        int before = seen_.fetch_add(heads);
        if (before < o_.pause_after && before + heads >= o_.pause_after) {
          pause_until_.store(std::chrono::steady_clock::now() + std::chrono::milliseconds(o_.pause_ms));
        }
        std::this_thread::sleep_until(pause_until_.load());  // the stall being simulated
      }
      out.clear();
      for (int j = 0; j < heads; ++j) out += o_.respond ? o_.respond(++answered_) : std::string(o_.response);
      std::size_t done = 0;
      while (done < out.size()) {
        ssize_t w = ::write(fd, out.data() + done, out.size() - done);
        if (w <= 0) return;
        done += static_cast<std::size_t>(w);
      }
    }
    std::lock_guard<std::mutex> l(mu_);
    inputs_ += input;
  }

  RawServerOptions o_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  std::vector<std::thread> workers_;
  std::atomic<int> seen_{0};
  std::atomic<int> answered_{0};
  std::atomic<std::chrono::steady_clock::time_point> pause_until_{};
  std::mutex mu_;
  std::string inputs_;
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

TEST(HttpLoadRunTest, OpenLoopKeepsItsRateWithinOnePercentOverTenSeconds) {
  RawServer server(4, true);
  HttpLoadOptions opt;
  opt.port = server.port();
  opt.connections = 4;
  opt.rate = 2000;
  opt.duration_s = 10.0;
  HttpLoadResult r = run_open_loop(opt);
  EXPECT_EQ(r.errors(), 0u) << r.first_error;
  EXPECT_EQ(r.sent, 20000u);
  EXPECT_EQ(r.responses, 20000u);
  EXPECT_NEAR(r.achieved_rate, 2000, 20) << describe(r);
  // One tick about every second, each with about R sends per second of its span (within 10%: a
  // tick's own wake-up may be late on a loaded machine, the sends' schedule is not).
  ASSERT_GE(r.ticks.size(), 10u);
  for (std::size_t k = 1; k < 10; ++k) {
    const double span = r.ticks[k].t_s - r.ticks[k - 1].t_s;
    EXPECT_NEAR(static_cast<double>(r.ticks[k].sent - r.ticks[k - 1].sent), 2000 * span, 200 * span)
        << "second " << k + 1;
  }
}

// The coordinated-omission canary: the server stalls for 1 s after 1,000 of 3,000 requests at
// 1,000/s. Every request scheduled during the stall is answered late by up to 1 s, so about
// 1,000 latencies are spread from 0 to 1 s: with a 100 ms deadline about 900 are timeouts.
TEST(HttpLoadRunTest, OpenLoopSeesAStalledServerAsAboutRLateAnswers) {
  RawServer server(stalling(4, 1000, 1000));
  HttpLoadOptions opt;
  opt.port = server.port();
  opt.connections = 4;
  opt.rate = 1000;
  opt.duration_s = 3.0;
  opt.deadline_ms = 100;
  HttpLoadResult r = run_open_loop(opt);
  EXPECT_EQ(r.errors(), 0u) << r.first_error;
  EXPECT_EQ(r.responses, 3000u);
  EXPECT_GE(r.timeouts, 800u) << describe(r);
  EXPECT_LE(r.timeouts, 1000u) << describe(r);
  EXPECT_GE(r.max_ns, 900'000'000u);
  EXPECT_LT(r.max_ns, 1'500'000'000u);
  // p50 stays low (two thirds were on time); p90 lands inside the stall.
  EXPECT_LT(r.p50_ns, 100'000'000u) << describe(r);
  EXPECT_GT(r.p90_ns, 100'000'000u) << describe(r);
}

// The same stall under a closed loop: each of the 4 connections waits out the stall once, so only
// about 4 answers are late — the omission the open loop corrects.
TEST(HttpLoadRunTest, ClosedLoopSeesTheSameStallAsOneLateAnswerPerConnection) {
  RawServer server(stalling(4, 1000, 1000));
  HttpLoadOptions opt;
  opt.port = server.port();
  opt.connections = 4;
  opt.requests = 10000;
  HttpLoadResult r = run_closed_loop(opt);
  EXPECT_EQ(r.errors(), 0u) << r.first_error;
  EXPECT_EQ(r.responses, 10000u);
  EXPECT_GE(r.max_ns, 900'000'000u);
  // About 4 of 10,000 above 100 ms: p99.9 (the 9,990th) is still fast.
  EXPECT_LT(r.p99_ns, 100'000'000u) << describe(r);
  EXPECT_LT(r.p999_ns, 100'000'000u) << describe(r);
}

// Each request's own deadline (a bid request's tmax): the stall makes about 250 answers later
// than 50 ms; only the half whose body carries the 50 ms deadline are timeouts.
TEST(HttpLoadRunTest, OpenLoopTimesEachRequestAgainstItsOwnDeadline) {
  RawServer server(stalling(2, 100, 300));
  HttpLoadOptions opt;
  opt.port = server.port();
  opt.connections = 2;
  opt.rate = 1000;
  opt.duration_s = 1.0;
  opt.method = "POST";
  opt.bodies = {"a", "b"};
  opt.deadlines_ms = {50, 10000};
  HttpLoadResult r = run_open_loop(opt);
  EXPECT_EQ(r.errors(), 0u) << r.first_error;
  EXPECT_EQ(r.responses, 1000u);
  EXPECT_GE(r.timeouts, 90u) << describe(r);
  EXPECT_LE(r.timeouts, 160u) << describe(r);
}

// The progress ticks carry each shard's share of a counter's growth, scraped from a metrics page
// once a second: shard 0 grows three times as fast as shard 1 (summed over the other labels and
// the metrics named; y_total is not one of them).
TEST(HttpLoadRunTest, OpenLoopShowsEachShardsShareFromTheMetricsPage) {
  RawServer server(2, true);
  RawServerOptions ao = with_conns(1);
  ao.respond = [](int n) {
    std::string page = "# TYPE x_total counter\nx_total{a=\"1\",shard=\"0\"} " + std::to_string(2 * n) +
                       "\nx_total{a=\"2\",shard=\"0\"} " + std::to_string(n) + "\nz_total{shard=\"1\"} " +
                       std::to_string(n) + "\ny_total{shard=\"1\"} " + std::to_string(5 * n) + "\n";
    return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(page.size()) + "\r\n\r\n" + page;
  };
  RawServer admin(ao);
  HttpLoadOptions opt;
  opt.port = server.port();
  opt.connections = 2;
  opt.rate = 200;
  opt.duration_s = 3.0;
  opt.shares_port = admin.port();
  opt.shares_metric = "x_total,z_total";
  HttpLoadResult r = run_open_loop(opt);
  EXPECT_EQ(r.errors(), 0u) << r.first_error;
  ASSERT_GE(r.ticks.size(), 3u);
  EXPECT_EQ(r.ticks[2].shares, "shares 0:75% 1:25%");
}

constexpr std::string_view kBid =
    "HTTP/1.1 200 OK\r\nContent-Length: 137\r\n\r\n"
    "{\"id\":\"1\",\"seatbid\":[{\"bid\":[{\"price\":2.5,\"nurl\":\"http://h:1/win?p=${AUCTION_PRICE}&x=1\","
    "\"burl\":\"http://h:1/bill?p=${AUCTION_PRICE}\"}]}]}";

TEST(HttpLoadRunTest, OpenLoopCountsStatusesAndSendsWinNoticesForAShareOfBids) {
  ASSERT_EQ(kBid.size() - kBid.find("\r\n\r\n") - 4, 137u);
  RawServerOptions bo = with_conns(1);
  bo.response = kBid;
  RawServer server(bo);
  HttpLoadOptions opt;
  opt.port = server.port();
  opt.connections = 1;
  opt.rate = 1000;
  opt.duration_s = 0.4;
  opt.method = "POST";
  opt.path = "/openrtb2/bid";
  opt.bodies = {"{\"id\":\"a\"}", "{\"id\":\"b\"}"};
  opt.fields = "Content-Type: application/json\r\n";
  opt.ok_statuses = {200, 204};
  opt.win_share = 0.25;
  opt.clearing = 0.8;
  HttpLoadResult r = run_open_loop(opt);
  server.join();
  EXPECT_EQ(r.errors(), 0u) << r.first_error;
  EXPECT_EQ(r.responses, 400u);
  EXPECT_EQ(r.status_counts[200], 400u);  // notices' answers are not counted as bid answers
  EXPECT_EQ(r.wins_sent, 100u);
  EXPECT_EQ(r.bills_sent, 100u);
  EXPECT_EQ(r.win_errors, 0u);
  std::string in = server.inputs();
  std::size_t wins = 0, bills = 0, a = 0;
  for (std::size_t at = 0; (at = in.find("GET /win?p=2.0000&x=1 HTTP/1.1\r\n", at)) != std::string::npos; ++at) ++wins;
  for (std::size_t at = 0; (at = in.find("GET /bill?p=2.0000 HTTP/1.1\r\n", at)) != std::string::npos; ++at) ++bills;
  EXPECT_EQ(bills, 100u);
  for (std::size_t at = 0; (at = in.find("{\"id\":\"a\"}", at)) != std::string::npos; ++at) ++a;
  EXPECT_EQ(wins, 100u);
  EXPECT_EQ(a, 200u);
  EXPECT_NE(in.find("Content-Type: application/json\r\n"), std::string::npos);
}

TEST(HttpLoadRunTest, OpenLoopCountsAWrongStatusAndPicksConnectionsForTheRate) {
  RawServer server(4, true);
  HttpLoadOptions opt;
  opt.port = server.port();
  opt.connections = 0;  // auto: 4 at this rate
  opt.rate = 500;
  opt.duration_s = 0.2;
  opt.ok_statuses = {204};
  HttpLoadResult r = run_open_loop(opt);
  EXPECT_EQ(r.connections_used, 4);
  EXPECT_EQ(r.bad_status, 100u);
  EXPECT_EQ(r.status_counts[200], 100u);
  EXPECT_EQ(auto_connections(100), 4);
  EXPECT_EQ(auto_connections(50'000), 50);
  EXPECT_EQ(auto_connections(1e7), 512);
}

}  // namespace
}  // namespace mnv::perf
