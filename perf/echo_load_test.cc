// perf/echo_load_test.cc — the echo benchmark's pieces, end to end: the plain-epoll baseline
// server (run as a child process from the test's runfiles) speaks the protocol, and the load and
// idle clients drive it with zero errors and the right counts. Also: the clients catch a wrong
// reply. (The latency histogram's own tests: metrics/latency_histogram_test.cc.)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "perf/echo_client.h"
#include "tests/runfiles.h"

namespace mnv::perf {
namespace {

using ::mnv::testing::runfile;

// The baseline server as a child process; the constructor waits for its "listening on" line.
class ServerProcess {
 public:
  explicit ServerProcess(const std::string& path) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      execl(path.c_str(), path.c_str(), "--host=127.0.0.1", "--port=0", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    out_ = out[0];
    if (pid_ < 0) return;
    // Read the first line, bounded by 20 s.
    std::string line;
    char ch;
    while (line.find('\n') == std::string::npos) {
      struct pollfd p = {out_, POLLIN, 0};
      if (poll(&p, 1, 20000) <= 0) break;
      if (read(out_, &ch, 1) != 1) break;
      line += ch;
    }
    first_line_ = line;
    const std::string want = "listening on ";
    if (line.rfind(want, 0) == 0) {
      std::size_t colon = line.rfind(':');
      if (colon != std::string::npos) port_ = atoi(line.c_str() + colon + 1);
    }
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status;
      waitpid(pid_, &status, 0);
    }
    if (out_ >= 0) close(out_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int pid() const { return pid_; }
  int port() const { return port_; }
  const std::string& first_line() const { return first_line_; }

 private:
  int pid_ = -1;
  int out_ = -1;
  int port_ = 0;
  std::string first_line_;
};

class EchoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(runfile("perf/epoll_echo_server"));
    ASSERT_GT(server_->pid(), 0);
    ASSERT_GT(server_->port(), 0) << "first line: \"" << server_->first_line() << "\"";
  }
  std::unique_ptr<ServerProcess> server_;
};

// A blocking connection with 10-second send and receive timeouts.
int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

std::string recv_n(int fd, std::size_t want) {
  std::string s;
  char buf[4096];
  while (s.size() < want) {
    ssize_t n = read(fd, buf, std::min(sizeof buf, want - s.size()));
    if (n <= 0) break;
    s.append(buf, static_cast<std::size_t>(n));
  }
  return s;
}

TEST_F(EchoTest, BaselineSpeaksTheProtocol) {
  int fd = dial(server_->port());
  ASSERT_GE(fd, 0);
  // Two lines in one write, one line split over two writes.
  ASSERT_TRUE(send_all(fd, "a\nbb\n"));
  ASSERT_TRUE(send_all(fd, "cc"));
  std::string want = "Line 0: a\nLine 1: bb\n";
  EXPECT_EQ(recv_n(fd, want.size()), want);
  ASSERT_TRUE(send_all(fd, "c\n"));
  want = "Line 2: ccc\n";
  EXPECT_EQ(recv_n(fd, want.size()), want);
  // The longest line, 8191 bytes with its '\n'.
  std::string longest(8190, 'x');
  longest += '\n';
  ASSERT_TRUE(send_all(fd, longest));
  want = "Line 3: " + longest;
  EXPECT_EQ(recv_n(fd, want.size()), want);
  // 8191 bytes without a '\n' are answered as a line of their own, as the seed's readline does.
  std::string run(8191, 'y');
  ASSERT_TRUE(send_all(fd, run + "z\n"));
  want = "Line 4: " + run + "Line 5: z\n";
  EXPECT_EQ(recv_n(fd, want.size()), want);
  // Counters are per connection.
  int fd2 = dial(server_->port());
  ASSERT_GE(fd2, 0);
  ASSERT_TRUE(send_all(fd2, "hello\n"));
  want = "Line 0: hello\n";
  EXPECT_EQ(recv_n(fd2, want.size()), want);
  close(fd2);
  close(fd);
}

TEST_F(EchoTest, LoadRunCountsEveryMessageWithoutErrors) {
  LoadOptions opt;
  opt.port = server_->port();
  opt.connections = 10;
  opt.msg_size = 64;
  opt.warmup_s = 0;
  opt.messages = 2000;  // 10 connections x 200
  opt.timeout_s = 30;
  opt.server_pid = server_->pid();
  LoadResult r = run_load(opt);
  EXPECT_EQ(r.errors(), 0u) << r.first_error;
  EXPECT_EQ(r.messages, 2000u);
  EXPECT_EQ(r.connections_ok, 10);
  EXPECT_GT(r.msgs_per_s, 0);
  EXPECT_GT(r.p50_ns, 0u);
  EXPECT_LE(r.p50_ns, r.p99_ns);
  EXPECT_LE(r.p99_ns, r.max_ns);
  EXPECT_GE(r.server_cpu_us, 0);  // measured (possibly 0 ticks in so short a run)
  std::string line = result_line(opt, r);
  EXPECT_EQ(line.rfind("RESULT ", 0), 0u) << line;
  EXPECT_NE(line.find(" messages=2000 "), std::string::npos) << line;
  EXPECT_NE(line.find(" errors=0 "), std::string::npos) << line;
}

TEST_F(EchoTest, LoadRunForADurationWithLongLines) {
  LoadOptions opt;
  opt.port = server_->port();
  opt.connections = 20;
  opt.msg_size = 4000;
  opt.warmup_s = 0.05;
  opt.duration_s = 0.2;
  opt.timeout_s = 30;
  LoadResult r = run_load(opt);
  EXPECT_EQ(r.errors(), 0u) << r.first_error;
  EXPECT_GT(r.messages, 0u);
  EXPECT_GE(r.seconds, 0.2);
  EXPECT_EQ(r.server_cpu_us, -1);  // no --server_pid
}

TEST_F(EchoTest, IdleRunHoldsEveryConnection) {
  IdleOptions opt;
  opt.port = server_->port();
  opt.connections = 300;
  opt.timeout_s = 30;
  opt.server_pid = server_->pid();
  IdleResult r = run_idle(opt);
  EXPECT_EQ(r.errors, 0u) << r.first_error;
  EXPECT_EQ(r.connections_ok, 300);
  EXPECT_GT(r.rss_before_kib, 0);
  EXPECT_GT(r.rss_after_kib, 0);
  // The server is still healthy after every connection was closed.
  LoadOptions load;
  load.port = server_->port();
  load.connections = 2;
  load.warmup_s = 0;
  load.messages = 10;
  load.timeout_s = 30;
  EXPECT_EQ(run_load(load).errors(), 0u);
}

// A server that answers its first line with the wrong line number.
TEST(EchoClientTest, WrongReplyIsAnError) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(lfd, 4), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  std::thread server([lfd] {
    struct pollfd p = {lfd, POLLIN, 0};
    if (poll(&p, 1, 10000) != 1) return;
    int fd = accept(lfd, nullptr, nullptr);
    if (fd < 0) return;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string line;
    char ch;
    while (read(fd, &ch, 1) == 1) {
      line += ch;
      if (ch == '\n') break;
    }
    send_all(fd, "Line 1: " + line);
    while (read(fd, &ch, 1) == 1) {
    }
    close(fd);
  });
  LoadOptions opt;
  opt.port = ntohs(a.sin_port);
  opt.connections = 1;
  opt.warmup_s = 0;
  opt.messages = 1;
  opt.timeout_s = 10;
  LoadResult r = run_load(opt);
  server.join();
  close(lfd);
  EXPECT_EQ(r.mismatches, 1u);
  EXPECT_GE(r.errors(), 1u);
  EXPECT_NE(r.first_error.find("wrong prefix"), std::string::npos) << r.first_error;
}

// A thread-per-connection echo server for `conns` connections; the first one it accepts is closed
// after `close_first_after` replies. `others_after_first`: the other connections are served only
// once the first is closed (so it dies before they have answered at all).
class ThreadedEchoServer {
 public:
  ThreadedEchoServer(int conns, int close_first_after, bool others_after_first = false) {
    lfd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(lfd_, 64) != 0 ||
        getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return;
    }
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this, conns, close_first_after, others_after_first] {
      int held[8];
      for (int k = 0; k < conns; ++k) {
        struct pollfd p = {lfd_, POLLIN, 0};
        if (poll(&p, 1, 10000) != 1) return;
        int fd = accept(lfd_, nullptr, nullptr);
        if (fd < 0) return;
        if (k > 0 && others_after_first) {
          held[k] = fd;
          continue;
        }
        workers_[k] = std::thread(serve, fd, k == 0 ? close_first_after : -1);
      }
      if (!others_after_first) return;
      workers_[0].join();
      for (int k = 1; k < conns; ++k) workers_[k] = std::thread(serve, held[k], -1);
    });
  }
  ~ThreadedEchoServer() {
    if (acceptor_.joinable()) acceptor_.join();
    for (std::thread& t : workers_) {
      if (t.joinable()) t.join();
    }
    if (lfd_ >= 0) close(lfd_);
  }
  int port() const { return port_; }

 private:
  static void serve(int fd, int close_after) {
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::string in;
    char buf[4096];
    for (std::uint64_t n = 0; close_after < 0 || n < static_cast<std::uint64_t>(close_after);) {
      std::size_t nl = in.find('\n');
      if (nl == std::string::npos) {
        ssize_t k = read(fd, buf, sizeof buf);
        if (k <= 0) break;
        in.append(buf, static_cast<std::size_t>(k));
        continue;
      }
      if (!send_all(fd, "Line " + std::to_string(n++) + ": " + in.substr(0, nl + 1))) break;
      in.erase(0, nl + 1);
    }
    close(fd);
  }

  int lfd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  std::thread workers_[8];
};

// A count-mode run of `messages` lines over 4 connections, no warm-up, at most 20 s.
LoadResult count_four(int port, std::int64_t messages) {
  LoadOptions opt;
  opt.port = port;
  opt.connections = 4;
  opt.warmup_s = 0;
  opt.messages = messages;
  opt.timeout_s = 20;
  return run_load(opt);
}

TEST(EchoClientTest, CountModeReplacesLinesLostWithAConnection) {
  ThreadedEchoServer server(/*conns=*/4, /*close_first_after=*/20);
  ASSERT_GT(server.port(), 0);
  LoadResult r = count_four(server.port(), 400);
  EXPECT_EQ(r.messages, 400u);  // exactly the count, though one connection was closed under it
  EXPECT_EQ(r.conn_errors, 1u) << r.first_error;
  EXPECT_EQ(r.mismatches, 0u);
  EXPECT_EQ(r.timeouts, 0u);
  EXPECT_EQ(r.connections_ok, 3);
  // A close with unread data may reach the client as a reset instead of an EOF.
  EXPECT_TRUE(r.first_error.find("closed by the server") != std::string::npos ||
              r.first_error.find("reset by peer") != std::string::npos)
      << r.first_error;
}

// The first connection dies after one reply, before the others have answered at all: the
// measured window still starts once every other connection has answered (a connection that
// answered and then failed is not waited for twice).
TEST(EchoClientTest, AConnectionThatDiesBeforeTheOthersAnswerDoesNotStallTheRun) {
  ThreadedEchoServer server(/*conns=*/4, /*close_first_after=*/1, /*others_after_first=*/true);
  ASSERT_GT(server.port(), 0);
  LoadResult r = count_four(server.port(), 100);
  EXPECT_EQ(r.messages, 100u);
  EXPECT_EQ(r.conn_errors, 1u) << r.first_error;
  EXPECT_EQ(r.timeouts, 0u) << r.first_error;
  EXPECT_EQ(r.connections_ok, 3);
}

}  // namespace
}  // namespace mnv::perf
