// The HTTP client on real loopback sockets against a raw server in the test (a std::thread with
// blocking sockets writing canned bytes): Content-Length, chunked split at every byte boundary,
// Connection: close, 204/304/HEAD without a body, 1xx skipped, pipelining 16 deep, a stalled
// server (the response deadline), a server that closes mid-response, and 10,000 requests on one
// connection with no global allocation. Once per poller backend.
#include "net/http/client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

#include "mem/heap_pool.h"
#include "net/io.h"
#include "net/service.h"
#include "runtime/global_alloc_counter.h"
#include "runtime/kernel.h"
#include "runtime/raise.h"

namespace mnv::http {
namespace {

// ---- the raw server ----------------------------------------------------------------------

// Accepts one connection and runs `script` on its blocking fd in a thread of its own.
class RawServer {
 public:
  explicit RawServer(std::function<void(int fd)> script) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), len), 0);
    EXPECT_EQ(::listen(listen_fd_, 8), 0);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    addr_ = a;
    thread_ = std::thread([this, script = std::move(script)] {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      script(fd);
      ::close(fd);
    });
  }
  ~RawServer() {
    join();
    ::close(listen_fd_);
  }
  // Waits for the script to end (before reading what it recorded).
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  const sockaddr* addr() const { return reinterpret_cast<const sockaddr*>(&addr_); }
  socklen_t addr_len() const { return sizeof addr_; }

 private:
  int listen_fd_ = -1;
  sockaddr_in addr_{};
  std::thread thread_;
};

// Reads until `n` request heads (each ending in an empty line; the tests send no bodies except
// where they read them themselves) have arrived; the bytes go to *got if given. False at EOF.
bool read_requests(int fd, int n, std::string* got = nullptr) {
  char buf[4096];
  int seen = 0;
  int match = 0;  // progress through "\r\n\r\n" (across reads)
  while (seen < n) {
    ssize_t k = ::read(fd, buf, sizeof buf);
    if (k <= 0) return false;
    if (got != nullptr) got->append(buf, static_cast<std::size_t>(k));
    for (ssize_t i = 0; i < k; ++i) {
      static constexpr char kEnd[] = "\r\n\r\n";
      match = buf[i] == kEnd[match] ? match + 1 : (buf[i] == '\r' ? 1 : 0);
      if (match == 4) {
        ++seen;
        match = 0;
      }
    }
  }
  return true;
}

void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t k = ::write(fd, s.data(), s.size());
    if (k <= 0) return;
    s.remove_prefix(static_cast<std::size_t>(k));
  }
}

// ---- the client side -----------------------------------------------------------------------

struct Backend {
  PollerKind kind;
  bool completion_io = true;
  bool recv_multishot = false;
};

std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  std::string name = poller_name(info.param.kind);
  if (info.param.kind == PollerKind::kIoUring && !info.param.completion_io) name += "_readiness";
  if (info.param.kind == PollerKind::kIoUring && info.param.completion_io && info.param.recv_multishot) {
    name += "_multishot";
  }
  return name;
}

// What a client thread saw: its responses' bodies and statuses, and the error it ended with.
struct Outcome {
  Client* client = nullptr;
  mnv::Error error;
  std::string explained;
  std::string log;  // "status:body|" per response
  bool finished = false;
};

Finally record(Outcome* o) {
  o->error = error();
  char buf[320];
  if (o->client != nullptr) o->explained = o->client->explain(o->error, buf, sizeof buf);
  co_return;
}

// Runs `body` (a coroutine taking the client and the outcome) in a kernel until it ends.
class ClientTest : public ::testing::TestWithParam<Backend> {
 protected:
  template <typename F>
  void run_client(const RawServer& server, F fn, Outcome* o, std::int64_t response_timeout_ns = 5'000'000'000) {
    KernelConfig kc;
    kc.poller = GetParam().kind;
    kc.completion_io = GetParam().completion_io;
    kc.recv_multishot = GetParam().recv_multishot;
    kc.max_fds = 256;
    kc.max_processes = 16;
    kc.exit_when_idle = true;
    auto k = Kernel::create(kc);
    ASSERT_NE(k, nullptr);
    k->start(pool_, thread_main<F>, server.addr(), server.addr_len(), &fn, o, response_timeout_ns);
    k->run();
  }

  template <typename F>
  static Thread thread_main(const sockaddr* a, socklen_t len, F* fn, Outcome* o, std::int64_t timeout_ns) {
    co_await finally(record(o));
    char scratch[1024];
    ClientOptions opt;
    opt.host = "test";
    opt.response_timeout_ns = timeout_ns;
    opt.scratch = scratch;
    Client c(opt);
    o->client = &c;
    co_await c.connect(a, len);
    co_await (*fn)(c, o);
    o->finished = true;
    o->client = nullptr;
  }

  HeapPool pool_{16, 64};
};

Request req(std::string_view method = "GET", std::string_view target = "/", std::string_view fields = {},
            std::string_view body = {}) {
  Request r;
  r.method = method;
  r.target = target;
  r.fields = fields;
  r.body = body;
  return r;
}

// Receives one response into the log.
Task<Response> take(Client& c, Outcome* o) {
  char body[256];
  Response r = co_await c.receive(body);
  o->log += std::to_string(r.status) + ":" + std::string(body, r.body_copied) + "|";
  co_return r;
}

TEST_P(ClientTest, ContentLengthResponseAndTheRequestAsWritten) {
  std::string request;
  RawServer server([&](int fd) {
    if (read_requests(fd, 1, &request)) write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  });
  Outcome o;
  run_client(
      server,
      [](Client& c, Outcome* o) -> Task<> {
        co_await c.send(req("GET", "/x?y=1", "Accept: */*\r\n"));
        Response r = co_await take(c, o);
        EXPECT_TRUE(r.keep_alive);
        EXPECT_EQ(r.body_size, 5u);
        EXPECT_EQ(c.outstanding(), 0u);
      },
      &o);
  EXPECT_TRUE(o.finished) << o.explained;
  EXPECT_EQ(o.log, "200:hello|");
  server.join();
  EXPECT_EQ(request, "GET /x?y=1 HTTP/1.1\r\nHost: test\r\nAccept: */*\r\n\r\n");
}

TEST_P(ClientTest, PostSendsItsBodyWithContentLength) {
  std::string request;
  RawServer server([&](int fd) {
    if (read_requests(fd, 1, &request)) {
      char body[4];
      std::size_t have = request.size() - (request.find("\r\n\r\n") + 4);
      if (have < 4 && ::read(fd, body, 4 - have) <= 0) return;
      write_all(fd, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    }
  });
  Outcome o;
  run_client(
      server,
      [](Client& c, Outcome* o) -> Task<> {
        co_await c.send(req("POST", "/echo", "", "abcd"));
        co_await take(c, o);
      },
      &o);
  EXPECT_TRUE(o.finished) << o.explained;
  EXPECT_EQ(o.log, "201:|");
  server.join();
  EXPECT_EQ(request.substr(0, request.find("\r\n\r\n") + 4),
            "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\n\r\n");
}

// Sends `response` in two writes split at byte k, for every k; the response on the wire is the
// same each time, so each must parse the same. (A short pause between the writes makes the client
// see the split most of the time; the result does not depend on it.)
constexpr std::string_view kChunked =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-T: 1\r\n\r\n";

TEST_P(ClientTest, ChunkedSplitAtEveryByteBoundary) {
  const std::size_t n = kChunked.size();
  RawServer server([&](int fd) {
    for (std::size_t k = 0; k <= n; ++k) {
      if (!read_requests(fd, 1)) return;
      write_all(fd, kChunked.substr(0, k));
      ::usleep(200);
      write_all(fd, kChunked.substr(k));
    }
  });
  Outcome o;
  std::size_t rounds = n + 1;
  run_client(
      server,
      [rounds](Client& c, Outcome* o) -> Task<> {
        for (std::size_t k = 0; k < rounds; ++k) {
          co_await c.send(req());
          Response r = co_await take(c, o);
          if (r.body_size != 12) break;
        }
      },
      &o);
  EXPECT_TRUE(o.finished) << o.explained;
  std::string want;
  for (std::size_t k = 0; k <= n; ++k) want += "200:hello, world|";
  EXPECT_EQ(o.log, want);
}

TEST_P(ClientTest, ConnectionCloseEndsTheConnection) {
  RawServer server([&](int fd) {
    if (read_requests(fd, 1)) write_all(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
  });
  Outcome o;
  run_client(
      server,
      [](Client& c, Outcome* o) -> Task<> {
        co_await c.send(req());
        Response r = co_await take(c, o);
        EXPECT_FALSE(r.keep_alive);
        EXPECT_TRUE(c.closed());
        co_await c.send(req());  // raises EPIPE: the server said it closes
        ADD_FAILURE() << "send after Connection: close did not raise";
      },
      &o);
  EXPECT_FALSE(o.finished);
  EXPECT_EQ(o.log, "200:ok|");
  EXPECT_EQ(o.error.code, EPIPE);
  EXPECT_NE(o.explained.find("closed the connection after response 1"), std::string::npos) << o.explained;
}

TEST_P(ClientTest, UntilCloseBodyEndsAtEof) {
  RawServer server([&](int fd) {
    if (read_requests(fd, 1)) write_all(fd, "HTTP/1.1 200 OK\r\n\r\nall of it");
  });
  Outcome o;
  run_client(
      server, [](Client& c, Outcome* o) -> Task<> {
        co_await c.send(req());
        co_await take(c, o);
        EXPECT_TRUE(c.closed());
      },
      &o);
  EXPECT_TRUE(o.finished) << o.explained;
  EXPECT_EQ(o.log, "200:all of it|");
}

TEST_P(ClientTest, NoBodyStatusesHeadAndInterimResponsesPipelined) {
  RawServer server([&](int fd) {
    if (!read_requests(fd, 4)) return;
    write_all(fd,
              "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"  // (a 204's length is ignored)
              "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"
              "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"  // the HEAD's answer: no body
              "HTTP/1.1 100 Continue\r\n\r\n"
              "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast");
  });
  Outcome o;
  run_client(
      server,
      [](Client& c, Outcome* o) -> Task<> {
        co_await c.send(req());
        co_await c.send(req());
        co_await c.send(req("HEAD"));
        co_await c.send(req());
        EXPECT_EQ(c.outstanding(), 4u);
        for (int i = 0; i < 4; ++i) co_await take(c, o);
      },
      &o);
  EXPECT_TRUE(o.finished) << o.explained;
  EXPECT_EQ(o.log, "204:|304:|200:|200:last|");
}

TEST_P(ClientTest, Pipelines16Deep) {
  RawServer server([&](int fd) {
    if (!read_requests(fd, 16)) return;
    std::string all;
    for (int i = 0; i < 16; ++i) {
      std::string b = "r" + std::to_string(i);
      all += "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(b.size()) + "\r\n\r\n" + b;
    }
    write_all(fd, all);
  });
  Outcome o;
  run_client(
      server,
      [](Client& c, Outcome* o) -> Task<> {
        for (int i = 0; i < 16; ++i) co_await c.send(req());
        for (int i = 0; i < 16; ++i) co_await take(c, o);
      },
      &o);
  EXPECT_TRUE(o.finished) << o.explained;
  std::string want;
  for (int i = 0; i < 16; ++i) want += "200:r" + std::to_string(i) + "|";
  EXPECT_EQ(o.log, want);
}

TEST_P(ClientTest, StalledServerHitsTheResponseDeadline) {
  RawServer server([&](int fd) {
    if (!read_requests(fd, 1)) return;
    write_all(fd, "HTTP/1.1 200 OK\r\nContent-Le");  // and nothing more until the client leaves
    char c;
    while (::read(fd, &c, 1) > 0) {
    }
  });
  Outcome o;
  std::int64_t start = monotonic_ns();
  run_client(
      server,
      [](Client& c, Outcome*) -> Task<> {
        co_await c.send(req());
        co_await c.receive();
      },
      &o, 50'000'000);
  EXPECT_GE(monotonic_ns() - start, 50'000'000);
  EXPECT_FALSE(o.finished);
  EXPECT_EQ(o.error.code, ETIMEDOUT);
  EXPECT_NE(o.explained.find("response 1: no complete head within 50 ms"), std::string::npos)
      << o.explained;
}

// receive_until() gives up at its wake-up time without losing the half-read response; the next
// call finishes it. The server sends the rest only once the client has given up (a pipe).
TEST_P(ClientTest, ReceiveUntilStopsAtItsWakeUpTimeAndResumes) {
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  RawServer server([&](int fd) {
    std::string got;
    if (!read_requests(fd, 1, &got)) return;
    write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst");
    char c;
    if (::read(go[0], &c, 1) != 1) return;
    write_all(fd, "-half");
    // The second request (sent after the client gave up) may have come with the first.
    if (got.find("\r\n\r\n") + 4 < got.size() || read_requests(fd, 1)) {
      write_all(fd, "HTTP/1.1 204 No Content\r\n\r\n");
    }
  });
  Outcome o;
  int signal_fd = go[1];
  run_client(
      server,
      [signal_fd](Client& c, Outcome* o) -> Task<> {
        co_await c.send(req());
        char body[32];
        Response r;
        int gave_up = 0;
        while (!co_await c.receive_until(monotonic_ns() + 2'000'000, &r, body)) {
          if (++gave_up == 1) {
            co_await c.send(req());  // a send between the calls (the open loop does that)
            EXPECT_EQ(::write(signal_fd, "x", 1), 1);
          }
        }
        EXPECT_GE(gave_up, 1);
        o->log = std::to_string(r.status) + ":" + std::string(body, r.body_copied);
        r = co_await c.receive(body);
        o->log += "|" + std::to_string(r.status);
      },
      &o);
  server.join();
  ::close(go[0]);
  ::close(go[1]);
  EXPECT_TRUE(o.finished) << o.explained;
  EXPECT_EQ(o.log, "200:first-half|204");
}

TEST_P(ClientTest, ServerClosingMidBodyIsAClearError) {
  RawServer server([&](int fd) {
    if (read_requests(fd, 1)) write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
  });
  Outcome o;
  run_client(
      server,
      [](Client& c, Outcome*) -> Task<> {
        co_await c.send(req());
        co_await c.receive();
      },
      &o);
  EXPECT_FALSE(o.finished);
  EXPECT_EQ(o.error.code, ECONNABORTED);
  EXPECT_NE(o.explained.find("response 1: the server closed the connection in the middle of the body (after 9 body "
                             "bytes)"),
            std::string::npos)
      << o.explained;
}

TEST_P(ClientTest, ServerClosingBeforeAnsweringIsAClearError) {
  RawServer server([&](int fd) { read_requests(fd, 1); });
  Outcome o;
  run_client(
      server,
      [](Client& c, Outcome*) -> Task<> {
        co_await c.send(req());
        co_await c.receive();
      },
      &o);
  EXPECT_EQ(o.error.code, ECONNABORTED);
  EXPECT_NE(o.explained.find("closed the connection before answering"), std::string::npos) << o.explained;
}

TEST_P(ClientTest, MalformedResponseIsAClearError) {
  RawServer server([&](int fd) {
    if (read_requests(fd, 1)) write_all(fd, "HTTP/1.1 2x0 OK\r\n\r\n");
  });
  Outcome o;
  run_client(
      server,
      [](Client& c, Outcome*) -> Task<> {
        co_await c.send(req());
        co_await c.receive();
      },
      &o);
  EXPECT_EQ(o.error.code, EPROTO);
  EXPECT_NE(o.explained.find("response 1: malformed head"), std::string::npos) << o.explained;
}

TEST_P(ClientTest, ConnectRefusedIsExplained) {
  // A port nobody listens on: bind one, note it, close it.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), len), 0);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  Outcome o;
  KernelConfig kc;
  kc.poller = GetParam().kind;
  kc.completion_io = GetParam().completion_io;
  kc.exit_when_idle = true;
  auto k = Kernel::create(kc);
  auto noop = [](Client&, Outcome*) -> Task<> { co_return; };
  k->start(pool_, thread_main<decltype(noop)>, reinterpret_cast<const sockaddr*>(&a), len, &noop, &o,
           std::int64_t{1'000'000'000});
  k->run();
  EXPECT_EQ(o.error.code, ECONNREFUSED);
  EXPECT_NE(o.explained.find("connect to the server failed"), std::string::npos) << o.explained;
}

// 10,000 requests on one keep-alive connection, pipelined 4 deep, after a warm-up: no global
// allocation on either side (the raw server answers from a fixed buffer).
constexpr int kWarmup = 200;
constexpr int kRequests = 10000;
constexpr std::string_view kPlain = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!";

TEST_P(ClientTest, TenThousandRequestsOnOneConnectionAllocateNothing) {
  RawServer server([&](int fd) {
    char buf[4096];
    int match = 0;
    for (;;) {
      ssize_t k = ::read(fd, buf, sizeof buf);
      if (k <= 0) return;
      int answers = 0;
      for (ssize_t i = 0; i < k; ++i) {
        static constexpr char kEnd[] = "\r\n\r\n";
        match = buf[i] == kEnd[match] ? match + 1 : (buf[i] == '\r' ? 1 : 0);
        if (match == 4) {
          ++answers;
          match = 0;
        }
      }
      char out[4 * 64];
      for (int a = 0; a < answers; a += 4) {
        int m = answers - a < 4 ? answers - a : 4;
        for (int j = 0; j < m; ++j) std::memcpy(out + j * kPlain.size(), kPlain.data(), kPlain.size());
        write_all(fd, std::string_view(out, m * kPlain.size()));
      }
    }
  });
  Outcome o;
  long allocations = -1;
  int ok = 0;
  run_client(
      server,
      [&allocations, &ok](Client& c, Outcome*) -> Task<> {
        char body[32];
        long before = 0;
        for (int i = 0; i < kWarmup + kRequests; i += 4) {
          if (i == kWarmup) before = global_allocations();
          for (int j = 0; j < 4; ++j) co_await c.send(req("GET", "/plaintext"));
          for (int j = 0; j < 4; ++j) {
            Response r = co_await c.receive(body);
            if (r.status == 200 && std::string_view(body, r.body_copied) == "Hello, World!") ++ok;
          }
        }
        allocations = global_allocations() - before;
      },
      &o);
  EXPECT_TRUE(o.finished) << o.explained;
  EXPECT_EQ(ok, kWarmup + kRequests);
  EXPECT_EQ(allocations, 0) << "global allocations over " << kRequests << " requests";
}

INSTANTIATE_TEST_SUITE_P(Backends, ClientTest,
                         ::testing::Values(Backend{PollerKind::kIoUring, true, false},
                                           Backend{PollerKind::kIoUring, true, true},
                                           Backend{PollerKind::kIoUring, false}, Backend{PollerKind::kEpoll},
                                           Backend{PollerKind::kPoll}),
                         backend_name);

}  // namespace
}  // namespace mnv::http
