// Conformance tests of the HTTP server (net/http/server.h) on real loopback sockets, raw and with
// curl, on every backend: semantics, bad input, timeouts, faults, pipelining split at every byte,
// bodies across the ring's wrap, and 10,000 requests on one connection without global allocation.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "apps/http/http_site.h"
#include "net/http/server.h"
#include "net/io.h"
#include "runtime/fault_injection.h"
#include "runtime/global_alloc_counter.h"
#include "runtime/process.h"
#include "runtime/raise.h"
#include "mem/page.h"
#include "tests/echo_fixture.h"

namespace mnv::testing {
namespace {

// A server writing to a connection its client closed must not kill the test (as the skeleton
// does for a server process: Kernel::install_signal_handlers).
const bool kPipeIgnored = ::signal(SIGPIPE, SIG_IGN) != SIG_ERR;

using http::Method;
using http::Request;
using http::Response;

Task<> segv(Request&, Response&) {
  null_dereference();
  co_return;
}
Task<> oom(Request&, Response&) {
  while (this_process().heap().allocate(kPageSize) != nullptr) {
  }
  co_await raise(ENOMEM);
}
// 8 MiB in 64 KiB chunks: more than the socket buffers hold, for the send timeout.
Task<> big(Request&, Response& res) {
  static const std::string piece(65536, 'b');
  co_await res.begin_chunked();
  for (int i = 0; i < 128; ++i) co_await res.chunk(piece);
  co_await res.end_chunked();
}
// Reads the whole body before answering (a broken body is then answered by the server).
Task<> consume(Request& req, Response& res) {
  char buf[4096];
  std::size_t n = co_await req.read_all(buf, sizeof buf);
  if (req.body_error() != 0) co_return;
  co_await res.send(std::to_string(n));
}
Task<> prefixed(Request& req, Response& res) {
  res.header("X-Path", req.path());
  res.header("X-Query", req.query());
  co_await res.send("prefix");
}

// 256 KiB of pattern (a byte out of place shows), alive for the whole test binary: a static body.
std::string make_pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7) % 26);
  return s;
}
const std::string kLargeStatic = make_pattern(256 * 1024);
// A static body larger than the socket's send buffer, which is made small (16 KiB): the gathered
// send stops part-way many times.
Task<> large_static(Request&, Response& res) {
  int small = 16384;
  ::setsockopt(default_socket().tx_fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  co_await res.send_static(kLargeStatic);
}

struct Fixture {
  http::Site site;
  explicit Fixture(http::ServerOptions o = {}) {
    site.options = o;
    http_app::add_routes(&site);
    site.router.add(Method::kGet, "/segv", segv);
    site.router.add(Method::kGet, "/oom", oom);
    site.router.add(Method::kGet, "/big", big);
    site.router.add_prefix(Method::kGet, "/files/", prefixed);
    site.router.add(Method::kPost, "/consume", consume);
    site.router.add(Method::kGet, "/large_static", large_static);
  }
  ServerConfig config() {
    ServerConfig c;
    c.handler = http::serve;
    c.message = &site;
    c.heap_pages = 16;
    c.pool_size = 64;
    return c;
  }
};

struct Reply {
  int status = 0;
  std::string head;  // status line and fields, with the blank line
  std::string body;
  bool has(const std::string& field) const { return head.find("\r\n" + field + "\r\n") != std::string::npos; }
};

// Reads one response: the head, then a Content-Length or chunked body (none for HEAD / no_body).
Reply read_reply(Client& c, bool no_body = false) {
  Reply r;
  while (r.head.size() < 4 || r.head.compare(r.head.size() - 4, 4, "\r\n\r\n") != 0) {
    std::string b = c.recv_n(1);
    if (b.empty()) return r;
    r.head += b;
  }
  r.status = std::atoi(r.head.c_str() + 9);
  if (no_body || r.status == 100 || r.status == 204) return r;
  std::size_t cl = r.head.find("Content-Length: ");
  if (cl != std::string::npos) {
    r.body = c.recv_n(std::strtoull(r.head.c_str() + cl + 16, nullptr, 10));
  } else if (r.head.find("Transfer-Encoding: chunked") != std::string::npos) {
    for (;;) {
      std::size_t n = std::strtoull(c.recv_line().c_str(), nullptr, 16);
      if (n == 0) {
        c.recv_line();
        break;
      }
      r.body += c.recv_n(n);
      c.recv_line();
    }
  }
  return r;
}

std::string get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n";
}
std::string post(const std::string& path, const std::string& body, const std::string& extra = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra +
         "\r\n" + body;
}
std::string chunked_post(const std::string& path, const std::string& body, std::size_t piece) {
  std::string s = "POST " + path + " HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  char hex[32];
  for (std::size_t i = 0; i < body.size(); i += piece) {
    std::size_t n = std::min(piece, body.size() - i);
    std::snprintf(hex, sizeof hex, "%zx\r\n", n);
    s += hex + body.substr(i, n) + "\r\n";
  }
  return s + "0\r\nX-Trailer: ignored\r\n\r\n";
}

class HttpServerTest : public ::testing::TestWithParam<Backend> {};

TEST_P(HttpServerTest, EndpointsAndHeaders) {
  Fixture f;
  ServerThread s(GetParam(), f.config());
  Client c(s.port());
  ASSERT_TRUE(c.send(get("/plaintext")));
  Reply r = read_reply(c);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "Hello, World!");
  EXPECT_TRUE(r.has("Server: mnv"));
  EXPECT_TRUE(r.has("Content-Type: text/plain"));
  EXPECT_NE(r.head.find("\r\nDate: "), std::string::npos);
  EXPECT_NE(r.head.find(" GMT\r\n"), std::string::npos);
  ASSERT_TRUE(c.send(get("/json")));
  r = read_reply(c);
  EXPECT_EQ(r.body, "{\"message\":\"Hello, World!\"}");
  EXPECT_TRUE(r.has("Content-Type: application/json"));
  ASSERT_TRUE(c.send(post("/echo", "abc")));
  EXPECT_EQ(read_reply(c).body, "abc");
  ASSERT_TRUE(c.send(get("/files/a/b?x=1")));
  r = read_reply(c);
  EXPECT_TRUE(r.has("X-Path: /files/a/b")) << r.head;
  EXPECT_TRUE(r.has("X-Query: x=1")) << r.head;
  // Absolute-form targets route by their path.
  ASSERT_TRUE(c.send("GET http://t/plaintext HTTP/1.1\r\nHost: t\r\n\r\n"));
  EXPECT_EQ(read_reply(c).body, "Hello, World!");
}

TEST_P(HttpServerTest, RoutingStatuses) {
  Fixture f;
  ServerThread s(GetParam(), f.config());
  Client c(s.port());
  ASSERT_TRUE(c.send(get("/nope")));
  EXPECT_EQ(read_reply(c).status, 404);
  ASSERT_TRUE(c.send("DELETE /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"));
  Reply r = read_reply(c);
  EXPECT_EQ(r.status, 405);
  EXPECT_TRUE(r.has("Allow: GET, HEAD, OPTIONS")) << r.head;
  ASSERT_TRUE(c.send(get("/echo")));
  r = read_reply(c);
  EXPECT_EQ(r.status, 405);
  EXPECT_TRUE(r.has("Allow: POST, OPTIONS")) << r.head;
  ASSERT_TRUE(c.send("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n"));
  r = read_reply(c);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.has("Allow: GET, HEAD, POST, OPTIONS")) << r.head;
  EXPECT_TRUE(r.has("Content-Length: 0"));
  ASSERT_TRUE(c.send("HEAD /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"));
  r = read_reply(c, true);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.has("Content-Length: 13"));
  // No body followed the HEAD answer: the next answer comes right after it.
  ASSERT_TRUE(c.send(get("/plaintext")));
  EXPECT_EQ(read_reply(c).body, "Hello, World!");
}

TEST_P(HttpServerTest, KeepAliveAndClose) {
  Fixture f;
  ServerThread s(GetParam(), f.config());
  {  // 1.1: kept alive; Connection: close ends it after the answer.
    Client c(s.port());
    ASSERT_TRUE(c.send(get("/plaintext")));
    EXPECT_FALSE(read_reply(c).has("Connection: close"));
    ASSERT_TRUE(c.send(get("/plaintext", "Connection: close\r\n")));
    Reply r = read_reply(c);
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.has("Connection: close"));
    EXPECT_TRUE(c.sees_eof());
  }
  {  // 1.0: closed unless asked to keep alive.
    Client c(s.port());
    ASSERT_TRUE(c.send("GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    Reply r = read_reply(c);
    EXPECT_TRUE(r.has("Connection: keep-alive")) << r.head;
    ASSERT_TRUE(c.send("GET /plaintext HTTP/1.0\r\n\r\n"));
    r = read_reply(c);
    EXPECT_EQ(r.body, "Hello, World!");
    EXPECT_TRUE(r.has("Connection: close"));
    EXPECT_TRUE(c.sees_eof());
  }
}

TEST_P(HttpServerTest, ExpectContinue) {
  Fixture f;
  ServerThread s(GetParam(), f.config());
  Client c(s.port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_EQ(read_reply(c).status, 100);
  ASSERT_TRUE(c.send("hello"));
  Reply r = read_reply(c);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello");
}

TEST_P(HttpServerTest, ChunkedBodiesBothWays) {
  Fixture f;
  ServerThread s(GetParam(), f.config());
  Client c(s.port());
  std::string body;
  for (int i = 0; i < 20000; ++i) body.push_back(static_cast<char>('a' + i % 26));
  ASSERT_TRUE(c.send(chunked_post("/echo", body, 777)));
  Reply r = read_reply(c);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.has("Transfer-Encoding: chunked"));
  EXPECT_EQ(r.body, body);
  ASSERT_TRUE(c.send(post("/echo", body)));  // over 4 KiB with Content-Length: streamed back chunked
  EXPECT_EQ(read_reply(c).body, body);
}

// Bodies of every size from 1 to 5000 bytes in steps, on one connection: the requests start at
// every offset of the 4080-byte ring, so heads and bodies straddle its wrap.
TEST_P(HttpServerTest, BodiesAcrossTheRingsWrap) {
  Fixture f;
  ServerThread s(GetParam(), f.config());
  Client c(s.port());
  for (std::size_t n = 1; n < 5000; n += 37) {
    std::string body(n, static_cast<char>('A' + n % 26));
    ASSERT_TRUE(c.send(n % 2 ? post("/echo", body) : chunked_post("/echo", body, 100)));
    Reply r = read_reply(c);
    ASSERT_EQ(r.status, 200) << n;
    ASSERT_EQ(r.body, body) << n;
  }
}

// Three pipelined requests (GET, POST with a body, GET), sent in two pieces split at every byte:
// all answered, in order, in one connection.
TEST_P(HttpServerTest, PipelinedSplitAtEveryByte) {
  Fixture f;
  ServerThread s(GetParam(), f.config());
  std::string in = get("/plaintext") + post("/echo", "pipelined body") + get("/json");
  for (std::size_t cut = 1; cut < in.size(); ++cut) {
    Client c(s.port());
    ASSERT_TRUE(c.send(in.substr(0, cut)));
    ASSERT_TRUE(c.send(in.substr(cut)));
    ASSERT_EQ(read_reply(c).body, "Hello, World!") << cut;
    ASSERT_EQ(read_reply(c).body, "pipelined body") << cut;
    ASSERT_EQ(read_reply(c).body, "{\"message\":\"Hello, World!\"}") << cut;
  }
  // 16 deep in one send: all 16 answers.
  Client c(s.port());
  std::string batch;
  for (int i = 0; i < 16; ++i) batch += get("/plaintext");
  ASSERT_TRUE(c.send(batch));
  for (int i = 0; i < 16; ++i) ASSERT_EQ(read_reply(c).body, "Hello, World!") << i;
}

struct BadCase {
  const char* what;
  std::string request;
  int status;
};

TEST_P(HttpServerTest, BadInputIsAnsweredAndClosed) {
  http::ServerOptions o;
  o.limits.max_body = 1000;
  o.limits.max_target = 100;
  Fixture f(o);
  ServerThread s(GetParam(), f.config());
  const BadCase cases[] = {
      {"malformed request line", "GARBAGE\r\n\r\n", 400},
      {"malformed header", "GET / HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n", 400},
      {"missing Host in 1.1", "GET / HTTP/1.1\r\n\r\n", 400},
      {"unsupported version", "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505},
      {"head over max_head", "GET / HTTP/1.1\r\nHost: t\r\nX: " + std::string(9000, 'x') + "\r\n\r\n", 431},
      {"target over the limit", "GET /" + std::string(200, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n", 414},
      {"body over the limit", post("/echo", std::string(2000, 'b')), 413},
      {"chunked body over the limit", chunked_post("/consume", std::string(2000, 'b'), 500), 413},
      {"Content-Length with Transfer-Encoding",
       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"differing Content-Lengths", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
       400},
      {"bad chunk size", "POST /consume HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400},
  };
  for (const BadCase& bc : cases) {
    Client c(s.port());
    ASSERT_TRUE(c.send(bc.request)) << bc.what;
    Reply r = read_reply(c);
    EXPECT_EQ(r.status, bc.status) << bc.what << "\n" << r.head;
    EXPECT_TRUE(r.has("Connection: close")) << bc.what;
    EXPECT_FALSE(r.body.empty()) << bc.what;
    EXPECT_TRUE(c.sees_eof()) << bc.what;
  }
  // Everyone else is still served.
  Client c(s.port());
  ASSERT_TRUE(c.send(get("/plaintext")));
  EXPECT_EQ(read_reply(c).body, "Hello, World!");
}

TEST_P(HttpServerTest, TimeoutsCloseTheConnection) {
  http::ServerOptions o;
  o.header_timeout_ns = 200'000'000;
  o.body_timeout_ns = 200'000'000;
  o.keepalive_timeout_ns = 200'000'000;
  o.send_timeout_ns = 200'000'000;
  Fixture f(o);
  ServerThread s(GetParam(), f.config());
  {  // slowloris: a head that never ends
    Client c(s.port());
    ASSERT_TRUE(c.send("GET /plaintext HTTP/1.1\r\nHost: t\r\n"));
    EXPECT_TRUE(c.sees_eof());
  }
  {  // a body that never ends
    Client c(s.port());
    ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"));
    EXPECT_TRUE(c.sees_eof());
  }
  {  // idle after an answer
    Client c(s.port());
    ASSERT_TRUE(c.send(get("/plaintext")));
    EXPECT_EQ(read_reply(c).status, 200);
    EXPECT_TRUE(c.sees_eof());
  }
  {  // a client that stops reading: its connection ends on the server while it holds it open
    Client c(s.port());
    int small = 4096;
    ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    ASSERT_TRUE(c.send(get("/big")));
    EXPECT_TRUE(s.wait_until([&] { return s.server()->active() == 0; }));
  }
  Client c(s.port());
  ASSERT_TRUE(c.send(get("/plaintext")));
  EXPECT_EQ(read_reply(c).body, "Hello, World!");
}

TEST_P(HttpServerTest, HandlerFaultsGet500AndTheShardServesOn) {
  Fixture f;
  ServerThread s(GetParam(), f.config());
  for (const char* path : {"/segv", "/oom"}) {
    Client c(s.port());
    ASSERT_TRUE(c.send(get("/plaintext") + get(path)));
    EXPECT_EQ(read_reply(c).body, "Hello, World!") << path;
    Reply r = read_reply(c);
    EXPECT_EQ(r.status, 500) << path << r.head;
    EXPECT_TRUE(r.has("Connection: close")) << path;
    EXPECT_TRUE(c.sees_eof()) << path;
  }
  // (the supervisor counts deaths as it reaps them)
  EXPECT_TRUE(s.wait_until([&] { return s.server()->deaths() >= 2; }));
  EXPECT_EQ(s.server()->deaths(), 2u);
  Client c(s.port());
  ASSERT_TRUE(c.send(get("/plaintext")));
  EXPECT_EQ(read_reply(c).body, "Hello, World!");
}

TEST_P(HttpServerTest, DrainAnswersWithCloseAndEnds) {
  Fixture f;
  ServerThread s(GetParam(), f.config());
  Client idle(s.port());
  Client busy(s.port());
  ASSERT_TRUE(busy.send(get("/plaintext")));  // (answered: the connection is established and served)
  EXPECT_EQ(read_reply(busy).status, 200);
  ASSERT_TRUE(busy.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nab"));
  ASSERT_TRUE(idle.send(get("/plaintext")));
  EXPECT_EQ(read_reply(idle).status, 200);
  s.drain();
  EXPECT_TRUE(idle.sees_eof());
  // Draining ends every connection's input (net/service.h): the request in hand is answered
  // with what could still be read (here its body ended early: 400), with Connection: close.
  busy.send("cd");
  Reply r = read_reply(busy);
  EXPECT_NE(r.status, 0);
  EXPECT_TRUE(r.has("Connection: close")) << r.head;
  EXPECT_TRUE(busy.sees_eof());
}

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

// One request on fd and its answer, which ends with `tail` (its blank line and body), read into a
// fixed buffer: no allocation on the client's side.
bool round_trip(int fd, std::string_view req, std::string_view tail) {
  char buf[4096];
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return false;
  std::size_t got = 0;
  for (;;) {
    ssize_t r = ::recv(fd, buf + got, sizeof buf - got, 0);
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
    if (got >= tail.size() && std::memcmp(buf + got - tail.size(), tail.data(), tail.size()) == 0) return true;
  }
}

// 10,000 requests on one keep-alive connection: no global allocation (server and this client
// use fixed buffers) and flat RSS.
TEST_P(HttpServerTest, TenThousandRequestsOnOneConnection) {
  Fixture f;
  ServerThread s(GetParam(), f.config());
  Client c(s.port());
  auto one = [&] {
    return round_trip(c.fd(), "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", "\r\n\r\nhello");
  };
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(one()) << i;
  long rss = rss_kib();
  long allocs = global_allocations();
  for (int i = 0; i < 9000; ++i) ASSERT_TRUE(one()) << i;
  EXPECT_EQ(global_allocations() - allocs, 0);
  EXPECT_LT(rss_kib() - rss, 256) << "RSS grew";
}

// Static bodies (/plaintext, /json, /large_static: Response::send_static) are sent from where
// they are, gathered with the ring's bytes (heads, /echo's and /files' bodies): a pipelined
// batch mixing them, with more static bodies than a socket queues by pointer (the rest are
// copied), answered in order byte for byte, while the server's send buffer (made as small as the
// OS allows) makes the sends stop part-way many times; then 2,000 /plaintext requests
// with no global allocation.
TEST_P(HttpServerTest, StaticBodiesGatheredWithRingBytesInOrder) {
  Fixture f;
  ServerThread s(GetParam(), f.config());
  Client c(s.port());
  std::string batch;
  std::vector<std::string> want;
  for (int round = 0; round < 2; ++round) {
    batch += get("/plaintext") + get("/large_static") + post("/echo", "ring body " + std::to_string(round)) +
             get("/json") + get("/large_static") + get("/files/a?1");
    want.insert(want.end(), {"Hello, World!", kLargeStatic, "ring body " + std::to_string(round),
                             "{\"message\":\"Hello, World!\"}", kLargeStatic, "prefix"});
  }
  for (int i = 0; i < 20; ++i) {
    batch += get(i % 2 ? "/json" : "/plaintext");
    want.push_back(i % 2 ? "{\"message\":\"Hello, World!\"}" : "Hello, World!");
  }
  ASSERT_TRUE(c.send(batch));
  for (std::size_t i = 0; i < want.size(); ++i) {
    Reply r = read_reply(c);
    ASSERT_EQ(r.status, 200) << i << "\n" << r.head;
    ASSERT_EQ(r.body.size(), want[i].size()) << i;
    ASSERT_TRUE(r.body == want[i]) << "response " << i << ": bytes out of place";
  }
  Client k(s.port());
  auto one = [&] { return round_trip(k.fd(), "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n", "\r\n\r\nHello, World!"); };
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(one()) << i;
  long allocs = global_allocations();
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(one()) << i;
  EXPECT_EQ(global_allocations() - allocs, 0);
}

// The server keeps the start of the last response head (status line, Server, Date, the handler's
// fields) per shard: each response still carries its own fields, also when they change in place
// (the views point into the receive ring, where the next request's bytes lie at the same place).
TEST_P(HttpServerTest, EachResponseHasItsOwnFields) {
  Fixture f;
  ServerThread s(GetParam(), f.config());
  Client c(s.port());
  for (const char* path : {"/files/a?1", "/files/b?2", "/files/b?2", "/plaintext", "/files/abc?", "/nowhere", "/files/a?1"}) {
    ASSERT_TRUE(c.send(get(path)));
    Reply r = read_reply(c);
    std::string p = path;
    if (p.rfind("/files/", 0) == 0) {
      EXPECT_EQ(r.status, 200) << path;
      EXPECT_TRUE(r.has("X-Path: " + p.substr(0, p.find('?')))) << path << "\n" << r.head;
      EXPECT_TRUE(r.has("X-Query: " + p.substr(p.find('?') + 1))) << path << "\n" << r.head;
    } else {
      EXPECT_EQ(r.status, p == "/plaintext" ? 200 : 404) << path;
      EXPECT_EQ(r.head.find("X-Path"), std::string::npos) << path << "\n" << r.head;
    }
    EXPECT_TRUE(r.head.rfind(p == "/nowhere" ? "HTTP/1.1 404 " : "HTTP/1.1 200 ", 0) == 0) << r.head;
  }
}

// Heads larger than the 4080-byte receive ring are served up to max_head (8192 by default), with
// what follows them (a body, a pipelined request) read from the ring as usual; one byte over
// max_head gets 431. Heads are sent whole and in pieces (which end at many offsets of the ring).
TEST_P(HttpServerTest, HeadsLargerThanTheRingUpToMaxHead) {
  Fixture f;
  ServerThread s(GetParam(), f.config());
  const std::string line = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nX: ";
  auto head_of = [&](std::size_t total) {  // a head of exactly `total` bytes
    return line + std::string(total - line.size() - 4, 'x') + "\r\n\r\n";
  };
  for (std::size_t total : {std::size_t{4000}, std::size_t{4081}, std::size_t{6000}, std::size_t{8192}}) {
    for (std::size_t piece : {std::size_t{100000}, std::size_t{1000}, std::size_t{333}}) {
      Client c(s.port());
      ASSERT_TRUE(c.send(get("/plaintext")));  // (the next head starts inside the ring)
      EXPECT_EQ(read_reply(c).body, "Hello, World!");
      std::string all = head_of(total) + "hello" + get("/plaintext");
      for (std::size_t i = 0; i < all.size(); i += piece) ASSERT_TRUE(c.send(all.substr(i, piece)));
      Reply r = read_reply(c);
      EXPECT_EQ(r.status, 200) << total << " / " << piece << "\n" << r.head;
      EXPECT_EQ(r.body, "hello") << total << " / " << piece;
      EXPECT_EQ(read_reply(c).body, "Hello, World!") << total << " / " << piece;
    }
  }
  Client c(s.port());
  ASSERT_TRUE(c.send(head_of(8193) + "hello"));
  Reply r = read_reply(c);
  EXPECT_EQ(r.status, 431) << r.head;
  EXPECT_TRUE(c.sees_eof());
}

// An idle keep-alive connection, once the trim pass has passed it, keeps one page of its
// micro-heap: what it holds while it waits for the next request fits in 4 KiB (its rings are
// given back, and a request's state lives only while it is served). perf/http_idle_memory.py
// measures the RSS this comes to.
TEST_P(HttpServerTest, IdleKeepAliveConnectionKeepsOnePage) {
  Fixture f;
  ServerThread s(GetParam(), f.config(), 20'000'000);
  Client c(s.port());
  ASSERT_TRUE(c.send(get("/plaintext")));
  EXPECT_EQ(read_reply(c).status, 200);
  HeapPool& pool = s.server()->pool();
  auto connection_heap = [&]() -> const Heap* {  // the one heap in use that holds blocks
    for (std::size_t i = 0; i < pool.capacity(); ++i) {
      if (pool.at(i)->allocation_count() != 0) return pool.at(i);
    }
    return nullptr;
  };
  ASSERT_NE(connection_heap(), nullptr);
  // The trim pass lowers the heap's high-water mark to what it holds.
  EXPECT_TRUE(s.wait_until([&] { return connection_heap()->high_water_bytes() <= kPageSize; }))
      << connection_heap()->high_water_bytes() << " bytes held by an idle connection";
  // It still serves.
  ASSERT_TRUE(c.send(get("/plaintext")));
  EXPECT_EQ(read_reply(c).body, "Hello, World!");
}

// curl: HEAD, chunked POST, keep-alive reuse.
TEST_P(HttpServerTest, Curl) {
  if (std::system("curl --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "no curl";
  Fixture f;
  ServerThread s(GetParam(), f.config());
  std::string base = "http://127.0.0.1:" + std::to_string(s.port());
  auto run = [](const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    char b[4096];
    std::size_t n;
    while ((n = std::fread(b, 1, sizeof b, p)) > 0) out.append(b, n);
    ::pclose(p);
    return out;
  };
  EXPECT_EQ(run("curl -s " + base + "/plaintext " + base + "/json"), "Hello, World!{\"message\":\"Hello, World!\"}");
  std::string head = run("curl -sI " + base + "/plaintext");
  EXPECT_NE(head.find("HTTP/1.1 200 OK"), std::string::npos) << head;
  EXPECT_NE(head.find("Content-Length: 13"), std::string::npos) << head;
  EXPECT_EQ(run("printf 'chunked via curl' | curl -s -H 'Transfer-Encoding: chunked' --data-binary @- " + base + "/echo"),
            "chunked via curl");
  EXPECT_EQ(run("curl -s -o /dev/null -w '%{http_code}' " + base + "/missing"), "404");
}

INSTANTIATE_TEST_SUITE_P(Backends, HttpServerTest, all_backends(), backend_name);

}  // namespace
}  // namespace mnv::testing
