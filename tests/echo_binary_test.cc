// Tests of the apps/echo binary as a real process: the seed's echo behaviour against a golden
// transcript, a clean exit 0 on SIGTERM with connections open, and EMFILE on accept backing off
// (not spinning) and recovering, for each poller; bad flags; deaths logged with their peers (per
// isolation mode); shards as processes, one of them killed and restarted.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/kernel.h"
#include "runtime/poller.h"
#include "tests/child_server.h"
#include "tests/echo_fixture.h"

namespace mnv::testing {
namespace {

// The echo binary as a child process (tests/child_server.h); its stderr goes to `stderr_path` if
// one is given.
class EchoProcess : public ChildServer {
 public:
  EchoProcess(const std::string& poller, rlim_t max_files = 0, std::vector<std::string> extra = {"--shards=auto"},
              const std::string& stderr_path = "")
      : ChildServer(exec(args(poller, std::move(extra))), {.stderr_path = stderr_path, .max_files = max_files}) {}

 private:
  static std::vector<std::string> args(const std::string& poller, std::vector<std::string> extra) {
    std::vector<std::string> a = {runfile("apps/echo/echo"), "--poller=" + poller, "--grace_ms=200"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

class EchoBinaryTest : public ::testing::TestWithParam<PollerKind> {};

TEST_P(EchoBinaryTest, GoldenTranscript) {
  EchoProcess echo(poller_name(GetParam()));
  ASSERT_NE(echo.port(), 0);
  Client c(echo.port());
  ASSERT_TRUE(c.send(slurp(runfile("tests/golden/echo.in"))));
  ::shutdown(c.fd(), SHUT_WR);
  EXPECT_EQ(c.recv_all(), slurp(runfile("tests/golden/echo.out")));
}

TEST_P(EchoBinaryTest, SigtermExitsZeroWithConnectionsOpen) {
  EchoProcess echo(poller_name(GetParam()));
  ASSERT_NE(echo.port(), 0);
  Client idle(echo.port());
  Client busy(echo.port());
  // Both accepted before the signal (a connection still in the accept queue is reset instead).
  ASSERT_TRUE(idle.send("i\n"));
  ASSERT_EQ(idle.recv_line(), "Line 0: i\n");
  ASSERT_TRUE(busy.send("x\n"));
  ASSERT_EQ(busy.recv_line(), "Line 0: x\n");
  EXPECT_EQ(echo.terminate(), 0);
  EXPECT_TRUE(idle.sees_eof());
}

TEST_P(EchoBinaryTest, EmfileOnAcceptBacksOffAndRecovers) {
#ifdef MNV_SANITIZER
  GTEST_SKIP() << "the sanitizer runtimes themselves need descriptors; they misreport at EMFILE";
#endif
  // One shard: one accept queue, so the connections served first are the first ones made.
  EchoProcess echo(poller_name(GetParam()), /*max_files=*/32, {"--shards=1"});
  ASSERT_NE(echo.port(), 0);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 40; ++i) clients.push_back(std::make_unique<Client>(echo.port()));
  // Every client gets in the kernel's accept queue; the server can hold only some of them. The
  // queue is first in, first out: the served ones are the first `served`, each answered at once,
  // so the first client without an answer within a second is the first one still queued.
  std::size_t served = 0;
  for (auto& c : clients) {
    ASSERT_TRUE(c->send("hi\n"));
  }
  timeval second{1, 0};
  for (auto& c : clients) {
    ::setsockopt(c->fd(), SOL_SOCKET, SO_RCVTIMEO, &second, sizeof second);
    if (c->recv_line() != "Line 0: hi\n") break;
    ++served;
  }
  EXPECT_GT(served, 10u);
  EXPECT_LT(served, 40u);
  // While out of descriptors the server must not spin on its readable listener.
  long before = echo.cpu_ticks();
  timeval wait{0, 500'000};
  ::setsockopt(clients.back()->fd(), SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  clients.back()->recv_line();  // nothing comes: it is still queued
  long used = echo.cpu_ticks() - before;
  EXPECT_LT(used, sysconf(_SC_CLK_TCK) / 4) << "server burned CPU while at EMFILE";
  // Closing the served ones frees descriptors: the queued clients are then served too.
  std::size_t freed = 0;
  std::vector<std::unique_ptr<Client>> waiting;
  for (auto& c : clients) {
    if (freed < served) {
      c->close();
      ++freed;
    }
  }
  timeval patient{5, 0};
  std::size_t late = 0;
  for (std::size_t i = served; i < clients.size(); ++i) {
    ::setsockopt(clients[i]->fd(), SOL_SOCKET, SO_RCVTIMEO, &patient, sizeof patient);
    if (clients[i]->recv_line() == "Line 0: hi\n") ++late;
  }
  EXPECT_EQ(late, clients.size() - served);
}

// Runs the echo binary with `args`, returns its exit status and what it wrote to stderr.
int run_echo(const std::string& args, std::string* err) {
  std::string cmd = runfile("apps/echo/echo") + " " + args + " 2>&1 >/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) *err += buf;
  int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs a shell command; its stdout into *out, its exit status returned.
int capture_stdout(const std::string& cmd, std::string* out) {
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) *out += buf;
  int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(EchoConfigTest, EachBadValueIsNamedAndExitsTwoBeforeAnyShardStarts) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = tmp != nullptr ? tmp : "/tmp";
  struct Case {
    std::string args;
    std::string expect;
  } cases[] = {
      {"--shards=0", "--shards=0"},
      {"--shards=9999", "--shards=9999"},
      {"--shards=64", "more shards than CPUs"},
      {"--cpuset=9999", "--cpuset=9999"},
      {"--cpuset=0-x", "--cpuset=0-x"},
      {"--poller=kqueue", "--poller=kqueue"},
      {"--isolation=maybe", "--isolation=maybe"},
      {"--balance=random", "--balance=random"},
      {"--shard_mode=fork", "--shard_mode=fork"},
      {"--restart_stuck_ms=-1", "--restart_stuck_ms=-1"},
      {"--max_run_ms=-1", "--max_run_ms=-1: must be 0 (off) or more"},
      // What is not a config file, or a value that could not serve.
      {"--config=/dev/zero", "/dev/zero: larger than 1024 KiB: not a config file"},
      {"--config=" + dir, dir + ": is a directory, not a config file"},
      {"--heap_pages=1", "--heap_pages=1: echo needs at least 2 pages per connection"},
      {"--config", "--config: needs a value"},
      {"--bogus=1", "--bogus=1: unknown flag"},
  };
  for (const Case& c : cases) {
    std::string err;
    EXPECT_EQ(run_echo(c.args, &err), 2) << c.args;
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.args << ": " << err;
    EXPECT_EQ(err.find("listening"), std::string::npos);
  }
  std::string file = dir + "/bad_affinity.toml";
  {
    std::ofstream f(file);
    f << "shards = 1\npoller = \"epoll\"\nunknown_key = 3\n";
  }
  std::string err;
  EXPECT_EQ(run_echo("--config=" + file, &err), 2);
  EXPECT_NE(err.find("line 3"), std::string::npos) << err;
  EXPECT_NE(err.find("unknown_key"), std::string::npos) << err;
  {
    std::ofstream f(file);
    f << "shards = \"two\"\n";
  }
  err.clear();
  EXPECT_EQ(run_echo("--config=" + file, &err), 2);
  EXPECT_NE(err.find("line 1"), std::string::npos) << err;
  EXPECT_NE(err.find("two"), std::string::npos) << err;
  std::remove(file.c_str());
}

// Where the CPU has no memory protection keys, --isolation=pkeys is a configuration error: one
// line naming the flag and why, exit 2, before any shard starts.
TEST(EchoConfigTest, PkeysWhereUnavailableIsRefusedAtStartUp) {
  std::string why;
  if (Kernel::isolation_available(IsolationMode::kPkeys, &why)) GTEST_SKIP() << "this CPU has pkeys";
  std::string err;
  EXPECT_EQ(run_echo("--isolation=pkeys --port=0", &err), 2);
  EXPECT_NE(err.find("--isolation=pkeys: pkeys isolation is not available here"), std::string::npos) << err;
  EXPECT_EQ(err.find("shard"), std::string::npos) << "no shard should have started:\n" << err;
}

// With --fault_injection, connections whose handler traps or runs out of heap die; the server's
// supervisor logs each one with the connection's peer address and port and why it died, and
// everyone else keeps being served. Once per isolation mode.
class EchoDeathLogTest : public ::testing::TestWithParam<const char*> {};

std::uint16_t local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

TEST_P(EchoDeathLogTest, EachDeadConnectionIsLoggedWithItsPeerAndWhy) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string log = std::string(tmp != nullptr ? tmp : "/tmp") + "/echo_deaths_" + GetParam() + ".log";
  std::string mode = std::string("--isolation=") + GetParam();
  std::string err;
  {
    EchoProcess echo("epoll", 0, {"--shards=1", "--fault_injection", mode}, log);
    ASSERT_NE(echo.port(), 0);
    Client survivor(echo.port());
    ASSERT_TRUE(survivor.send("before\n"));
    ASSERT_EQ(survivor.recv_line(), "Line 0: before\n");
    struct Fault {
      const char* line;
      std::string why;
      std::uint16_t port = 0;
    } faults[] = {
        {"!segv\n", "EFAULT: SIGSEGV (invalid memory access) at address 0"},
        {"!fpe\n", "EFAULT: SIGFPE (arithmetic error, e.g. division by zero) at address 0x"},
        {"!oom\n", "ENOMEM (Cannot allocate memory) at apps/echo/echo_service.cc"},
    };
    for (Fault& f : faults) {
      Client bad(echo.port());
      f.port = local_port(bad.fd());
      ASSERT_TRUE(bad.send(f.line));
      EXPECT_TRUE(bad.sees_eof()) << f.line;  // its process died and was reclaimed
    }
    ASSERT_TRUE(survivor.send("after\n"));
    EXPECT_EQ(survivor.recv_line(), "Line 1: after\n");  // and the others are still served
    // Each death is logged in the loop turn that reclaimed it, before the signal is seen.
    EXPECT_EQ(echo.terminate(), 0);
    err = slurp(log);
    for (const Fault& f : faults) {
      std::string conn = "connection 127.0.0.1:" + std::to_string(f.port) + " (fd ";
      std::size_t at = err.find(conn);
      ASSERT_NE(at, std::string::npos) << conn << " in:\n" << err;
      std::string line = err.substr(at, err.find('\n', at) - at);
      EXPECT_NE(line.find("died and was reclaimed: " + f.why), std::string::npos) << line;
    }
  }
  EXPECT_NE(err.find("heap needs "), std::string::npos) << err;
  EXPECT_NE(err.find("served 4 connections (3 died of a trap or an unhandled error)"), std::string::npos) << err;
}

// A server's stderr as a FIFO the test reads line by line: waiting for a log line is waiting on
// an event. Open it before starting the server (pass path() as its stderr path): the server's
// open for writing then does not block.
class LogPipe {
 public:
  explicit LogPipe(const std::string& name) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    path_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/" + name + ".fifo";
    ::unlink(path_.c_str());
    EXPECT_EQ(::mkfifo(path_.c_str(), 0600), 0);
    int fd = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    ::fcntl(fd, F_SETFL, 0);  // (blocking reads from now on)
    file_ = ::fdopen(fd, "r");
  }
  ~LogPipe() {
    std::fclose(file_);
    ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  // Reads until a line containing `needle` (returned) or EOF (""); every line read is kept.
  std::string line_with(const std::string& needle) {
    char line[1024];
    while (std::fgets(line, sizeof line, file_) != nullptr) {
      text_ += line;
      if (std::strstr(line, needle.c_str()) != nullptr) return line;
    }
    return "";
  }
  // Everything the server wrote, once it has exited (reads to EOF).
  const std::string& all() {
    char line[1024];
    while (std::fgets(line, sizeof line, file_) != nullptr) text_ += line;
    return text_;
  }

 private:
  std::string path_;
  FILE* file_ = nullptr;
  std::string text_;
};

// With fault injection: a connection whose handler spins ("!hang"), returned once the shard is
// seen held by it (a line to the shard goes unanswered for `ms`; it answers in microseconds
// otherwise); null if that did not happen.
std::unique_ptr<Client> hold_the_shard(std::uint16_t port, int ms) {
  auto clients = open_answered(port, 1, "h");
  if (clients.size() != 1 || !clients[0]->send("!hang\n")) return nullptr;
  Client probe(port);
  pollfd answer{probe.fd(), POLLIN, 0};
  if (!probe.send("anyone?\n") || ::poll(&answer, 1, ms) != 0) return nullptr;
  return std::move(clients[0]);
}

// On SIGTERM the listener closes at once and the server drains (shard/server.h): input that had
// arrived is still answered, then the connection closes; but the server's supervisor stays
// until the last connection is gone: a connection that dies during the stop is still logged
// with its peer, and the server then exits 0 without waiting out the grace period. (A handler
// that spins, trapped after --max_run_ms, holds the shard across the SIGTERM, so that the line
// sent meanwhile has arrived before the drain and the death comes during the stop.)
TEST_P(EchoDeathLogTest, AConnectionDyingDuringTheGracePeriodIsStillLoggedWithItsPeer) {
  LogPipe log(std::string("echo_grace_") + GetParam());
  std::string mode = std::string("--isolation=") + GetParam();
  EchoProcess echo("epoll", 0, {"--shards=1", "--fault_injection", "--grace_ms=30000", "--max_run_ms=1000", mode},
                   log.path());
  ASSERT_NE(echo.port(), 0);
  Client c(echo.port());
  ASSERT_TRUE(c.send("hello\n"));
  ASSERT_EQ(c.recv_line(), "Line 0: hello\n");
  std::unique_ptr<Client> d = hold_the_shard(echo.port(), 100);
  ASSERT_NE(d, nullptr) << "the shard still answers";
  std::uint16_t port = local_port(d->fd());
  std::int64_t start = monotonic_ns();
  ::kill(echo.pid(), SIGTERM);
  ASSERT_TRUE(c.send("still served\n"));  // in flight before the drain: answered
  // The process exits by the end of grace_ms; its shards cut what is left a little before, to
  // clean up in time (shard/server.h).
  std::string signalled = log.line_with("echo: SIGTERM: stopping");
  EXPECT_NE(signalled.find("exits by 30000 ms"), std::string::npos) << signalled;
  std::string stopping = log.line_with("mnv: stopping: ");  // its listener is closed
  EXPECT_NE(stopping.find("1 listener(s) closed"), std::string::npos) << stopping;
  EXPECT_NE(stopping.find("29500 ms"), std::string::npos) << stopping;
  {
    Client late(echo.port());
    EXPECT_FALSE(late.connected());  // no new connection once it is stopping
  }
  ASSERT_EQ(c.recv_line(), "Line 1: still served\n");
  EXPECT_TRUE(c.sees_eof());  // drained: closed after what it had in hand
  EXPECT_TRUE(d->sees_eof());  // trapped
  EXPECT_EQ(echo.wait(), 0);
  EXPECT_LT(monotonic_ns() - start, 20'000'000'000);  // its last connection gone: no grace wait
  std::string err = log.all();
  std::string conn = "connection 127.0.0.1:" + std::to_string(port) + " (fd ";
  std::size_t at = err.find(conn);
  ASSERT_NE(at, std::string::npos) << conn << " in:\n" << err;
  std::string line = err.substr(at, err.find('\n', at) - at);
  EXPECT_NE(line.find("died and was reclaimed: EFAULT: SIGXCPU"), std::string::npos) << line;
  EXPECT_NE(err.find("(1 died of a trap or an unhandled error)"), std::string::npos) << err;
}

// On SIGTERM idle connections close at once (the server drains), and the server exits 0 long
// before its grace period; a connection that sends nothing for idle_timeout_ms is closed.
TEST(EchoShutdownTest, IdleConnectionsCloseAtOnceOnSigterm) {
  EchoProcess echo("io_uring", 0, {"--shards=1", "--grace_ms=30000"});
  ASSERT_NE(echo.port(), 0);
  auto clients = open_answered(echo.port(), 8);
  ASSERT_EQ(clients.size(), 8u);
  std::int64_t start = monotonic_ns();
  ::kill(echo.pid(), SIGTERM);
  for (auto& c : clients) EXPECT_TRUE(c->sees_eof());
  EXPECT_EQ(echo.wait(), 0);
  EXPECT_LT(monotonic_ns() - start, 5'000'000'000);
}

TEST(EchoShutdownTest, AConnectionIdleForIdleTimeoutMsIsClosed) {
  EchoProcess echo("io_uring", 0, {"--shards=1", "--idle_timeout_ms=300"});
  ASSERT_NE(echo.port(), 0);
  auto clients = open_answered(echo.port(), 2);
  ASSERT_EQ(clients.size(), 2u);
  std::int64_t start = monotonic_ns();
  EXPECT_TRUE(clients[0]->sees_eof());
  EXPECT_GE(monotonic_ns() - start, 200'000'000);
  EXPECT_TRUE(clients[1]->sees_eof());
  EXPECT_EQ(echo.terminate(), 0);
}

// With isolation and two shards, the shards are processes (shard_mode auto), whichever the
// balancing: the server serves from both (handoff passes each accepted fd to the least-loaded
// shard's process over a Unix socket), a connection that traps dies alone and is logged from its
// shard's process, and SIGTERM to the server (the parent) stops every shard, each reporting what
// it served, exit 0.
class EchoShardProcessesBalanceTest : public ::testing::TestWithParam<const char*> {};

TEST_P(EchoShardProcessesBalanceTest, ServeContainAFaultAndStopOnSigterm) {
  if (::sysconf(_SC_NPROCESSORS_ONLN) < 2) GTEST_SKIP() << "needs 2 CPUs";
  LogPipe log(std::string("echo_shard_processes_") + GetParam());
  {
    EchoProcess echo("io_uring", 0,
                     {"--shards=2", "--isolation=mprotect", "--fault_injection", std::string("--balance=") + GetParam()},
                     log.path());
    ASSERT_NE(echo.port(), 0);
    // (one at a time: handoff balances on the connections each shard is serving)
    auto clients = open_answered(echo.port(), 64);
    ASSERT_EQ(clients.size(), 64u);
    Client bad(echo.port());
    ASSERT_TRUE(bad.send("!segv\n"));
    EXPECT_TRUE(bad.sees_eof());
    for (int i = 0; i < 64; ++i) {
      ASSERT_TRUE(clients[i]->send("again\n"));
      ASSERT_EQ(clients[i]->recv_line(), "Line 1: again\n");
    }
    EXPECT_EQ(echo.terminate(), 0);
  }
  const std::string& err = log.all();
  EXPECT_NE(err.find("2 shard(s) (processes)"), std::string::npos) << err;
  EXPECT_NE(err.find("died and was reclaimed: EFAULT: SIGSEGV"), std::string::npos) << err;
  std::size_t served[2] = {0, 0};
  for (std::size_t k = 0; k < 2; ++k) {
    std::string shard = "echo: shard " + std::to_string(k) + " served ";
    std::size_t at = err.find(shard);
    ASSERT_NE(at, std::string::npos) << shard << " in:\n" << err;
    served[k] = std::strtoul(err.c_str() + at + shard.size(), nullptr, 10);
  }
  EXPECT_EQ(served[0] + served[1], 65u);
  if (std::string(GetParam()) == "handoff") {  // least-loaded: as even as it gets
    EXPECT_GE(served[0], 32u) << err;
    EXPECT_GE(served[1], 32u) << err;
  }
  EXPECT_EQ(err.find("restarted"), std::string::npos) << "no shard process died:\n" << err;
}

INSTANTIATE_TEST_SUITE_P(Balance, EchoShardProcessesBalanceTest, ::testing::Values("reuseport", "handoff"),
                         [](const ::testing::TestParamInfo<const char*>& i) { return std::string(i.param); });

// The processes whose parent is `pid` (from /proc/N/stat).
std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> kids;
  if (DIR* dir = ::opendir("/proc")) {
    while (dirent* e = ::readdir(dir)) {
      char* end;
      long p = std::strtol(e->d_name, &end, 10);
      if (*end != '\0' || p <= 0) continue;
      std::string stat = slurp("/proc/" + std::to_string(p) + "/stat");
      std::size_t close = stat.rfind(')');
      int ppid = 0;
      if (close != std::string::npos && std::sscanf(stat.c_str() + close + 1, " %*c %d", &ppid) == 1 && ppid == pid) {
        kids.push_back(static_cast<pid_t>(p));
      }
    }
    ::closedir(dir);
  }
  return kids;
}

// A shard process killed outright (as a fault in the runtime itself would end it) is started
// again by the server while the other shard serves; the server still serves everyone and exits
// 0 on SIGTERM. The server's stderr is read through a FIFO, line by line, to wait for its log.
TEST(EchoShardProcessesTest, AKilledShardProcessIsRestarted) {
  if (::sysconf(_SC_NPROCESSORS_ONLN) < 2) GTEST_SKIP() << "needs 2 CPUs";
  LogPipe log("echo_restart");
  {
    EchoProcess echo("io_uring", 0, {"--shards=2", "--isolation=mprotect"}, log.path());
    ASSERT_NE(echo.port(), 0);
    ASSERT_NE(log.line_with("2 shard(s) (processes)"), "");
    std::vector<pid_t> shards = children_of(echo.pid());
    ASSERT_EQ(shards.size(), 2u);
    ASSERT_EQ(::kill(shards[1], SIGKILL), 0);
    std::string restarted = log.line_with("restarted as process");
    EXPECT_NE(restarted.find("(process " + std::to_string(shards[1]) + ") died of SIGKILL"), std::string::npos)
        << restarted;
    // (a connection hashed to the dead listener before it is gone is made again)
    EXPECT_GE(serve_reconnecting(echo.port(), 100, "c"), 0) << "a client was never served";
    EXPECT_EQ(children_of(echo.pid()).size(), 2u);
    EXPECT_EQ(echo.terminate(), 0);
  }
  EXPECT_NE(log.all().find("echo: shard 1 served"), std::string::npos) << log.all();
}

// A handler that spins forever is trapped once it has run --max_run_ms of CPU time: only its
// connection is closed, and the others on the same shard are served throughout.
TEST(EchoFaultTest, AHandlerThatNeverYieldsIsTrappedAlone) {
  LogPipe log("echo_runaway");
  {
    EchoProcess echo("io_uring", 0, {"--shards=1", "--fault_injection", "--max_run_ms=300"}, log.path());
    ASSERT_NE(echo.port(), 0);
    auto clients = open_answered(echo.port(), 16);
    ASSERT_EQ(clients.size(), 16u);
    Client hang(echo.port());
    ASSERT_TRUE(hang.send("!hang\n"));
    EXPECT_TRUE(hang.sees_eof());
    std::string died = log.line_with("died and was reclaimed");
    EXPECT_NE(died.find("SIGXCPU (ran past its CPU time limit without yielding)"), std::string::npos) << died;
    for (std::size_t i = 0; i < clients.size(); ++i) {
      ASSERT_TRUE(clients[i]->send("again\n"));
      EXPECT_EQ(clients[i]->recv_line(), "Line 1: again\n") << i;
    }
    EXPECT_EQ(echo.terminate(), 0);
  }
}

// With the per-handler limit off, a handler that spins forever holds its whole shard
// (micro-threads are cooperative); with shards as processes that shard is killed as stuck and it
// is started again: the connections on the other shard are served throughout, and new ones on
// both afterwards.
TEST(EchoShardProcessesTest, AShardAHandlerHangsIsKilledAsStuckAndRestarted) {
  if (::sysconf(_SC_NPROCESSORS_ONLN) < 2) GTEST_SKIP() << "needs 2 CPUs";
  LogPipe log("echo_stuck");
  {
    EchoProcess echo("io_uring", 0,
                     {"--shards=2", "--isolation=mprotect", "--fault_injection", "--restart_stuck_ms=1000", "--max_run_ms=0"},
                     log.path());
    ASSERT_NE(echo.port(), 0);
    auto clients = open_answered(echo.port(), 32);
    ASSERT_EQ(clients.size(), 32u);
    Client hang(echo.port());
    ASSERT_TRUE(hang.send("!hang\n"));
    std::string killed = log.line_with("made no progress");
    EXPECT_NE(killed.find("killing it"), std::string::npos) << killed;
    std::string restarted = log.line_with("restarted as process");
    EXPECT_NE(restarted.find("killed as stuck"), std::string::npos) << restarted;
    EXPECT_TRUE(hang.sees_eof());  // its shard's connections went with it
    // The other shard's connections were never interrupted; the hung shard's were reset.
    int served = 0, reset = 0;
    for (auto& c : clients) {
      if (c->send("again\n") && c->recv_line() == "Line 1: again\n") {
        ++served;
      } else {
        ++reset;
      }
    }
    EXPECT_GT(served, 0);
    EXPECT_EQ(served + reset, 32);
    // New connections: served (by either shard).
    EXPECT_GE(serve_reconnecting(echo.port(), 64, "n"), 0) << "a client was never served";
    EXPECT_EQ(echo.terminate(), 0);
  }
}

// The server skeleton's config surface (shard/server.h), as a user meets it: --help lists every
// knob with its default, each of them a key of the file --print_config writes, which --config
// reads back to the same config; files that are not config files and values that cannot serve
// are refused before any shard starts.
TEST(EchoConfigTest, HelpListsEveryKnobAndEachIsATomlKey) {
  std::string printed, out;
  EXPECT_EQ(capture_stdout(runfile("apps/echo/echo") + " --print_config", &printed), 0);
  EXPECT_EQ(capture_stdout(runfile("apps/echo/echo") + " --help", &out), 0);
  int knobs = 0;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("  --", 0) != 0) continue;
    std::string name = line.substr(4, line.find('=') - 4);
    if (name == "config" || name == "print_config" || name == "help" || name.find(' ') != std::string::npos) continue;
    ++knobs;
    EXPECT_NE(line.find('='), std::string::npos) << "no default shown: " << line;
    bool key = printed.find("\n" + name + " = ") != std::string::npos ||
               printed.find("# " + name + " = (not set)") != std::string::npos;
    EXPECT_TRUE(key) << name << " is a flag but not a key of --print_config:\n" << printed;
  }
  EXPECT_GE(knobs, 15) << out;
  EXPECT_NE(out.find("--fault_injection=false"), std::string::npos) << out;
  EXPECT_NE(out.find("--heap_pages=8"), std::string::npos) << out;
}

TEST(EchoConfigTest, PrintConfigReadsBackThroughStdin) {
  std::string echo = runfile("apps/echo/echo");
  std::string first, second;
  std::string flags = " --shards=1 --poller=epoll --grace_ms=321 --pool_size=77 --fault_injection --host=::1";
  EXPECT_EQ(capture_stdout(echo + " --print_config" + flags, &first), 0);
  EXPECT_EQ(capture_stdout(echo + " --print_config" + flags + " | " + echo + " --config=/dev/stdin --print_config", &second), 0);
  EXPECT_EQ(first, second);
  EXPECT_NE(first.find("grace_ms = 321\n"), std::string::npos) << first;
  EXPECT_NE(first.find("[echo]"), std::string::npos) << first;
  EXPECT_NE(first.find("fault_injection = true\n"), std::string::npos) << first;
  EXPECT_NE(first.find("host = \"::1\"\n"), std::string::npos) << first;
}

TEST(EchoConfigTest, AHeapTooSmallInTheFileIsNamedWithItsLine) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = tmp != nullptr ? tmp : "/tmp";
  std::string file = dir + "/one_page.toml";
  std::ofstream(file) << "[service]\nheap_pages = 1\n";
  std::string err;
  EXPECT_EQ(run_echo("--config=" + file, &err), 2);
  EXPECT_NE(err.find("line 2: service.heap_pages = 1: echo needs at least 2 pages"), std::string::npos) << err;
}

// Shutdown (shard/server.h): a shard stuck in a handler that never yields (the runaway limit
// off, shards as threads) does not hold the process past grace_ms; a second SIGTERM exits at
// once; SIGHUP reaches the app as a reload and the server goes on serving.
TEST(EchoShutdownTest, AStuckShardDoesNotOutliveTheGracePeriod) {
  LogPipe log("echo_stuck_threads");
  EchoProcess echo("io_uring", 0,
                   {"--shards=1", "--shard_mode=threads", "--fault_injection", "--max_run_ms=0", "--grace_ms=600"},
                   log.path());
  ASSERT_NE(echo.port(), 0);
  std::unique_ptr<Client> hung = hold_the_shard(echo.port(), 500);
  ASSERT_NE(hung, nullptr) << "the shard still answers";
  std::int64_t start = monotonic_ns();
  ::kill(echo.pid(), SIGTERM);
  EXPECT_EQ(echo.wait(), 1);
  std::int64_t took_ms = (monotonic_ns() - start) / 1'000'000;
  EXPECT_GE(took_ms, 400);
  EXPECT_LT(took_ms, 600 + 400) << "exited " << took_ms << " ms after SIGTERM";
  EXPECT_NE(log.all().find("echo: a shard is still stuck 600 ms after the stop"), std::string::npos) << log.all();
}

TEST(EchoShutdownTest, ASecondSigtermExitsAtOnce) {
  LogPipe log("echo_second_sigterm");
  EchoProcess echo("io_uring", 0,
                   {"--shards=1", "--shard_mode=threads", "--fault_injection", "--max_run_ms=0", "--grace_ms=60000"},
                   log.path());
  ASSERT_NE(echo.port(), 0);
  std::unique_ptr<Client> hung = hold_the_shard(echo.port(), 100);
  ASSERT_NE(hung, nullptr) << "the shard still answers";
  ::kill(echo.pid(), SIGTERM);
  ASSERT_NE(log.line_with("SIGTERM: stopping"), "");
  std::int64_t start = monotonic_ns();
  ::kill(echo.pid(), SIGTERM);
  EXPECT_EQ(echo.wait(), 1);
  EXPECT_LT((monotonic_ns() - start) / 1'000'000, 2'000);
  EXPECT_NE(log.all().find("SIGTERM again: exiting now"), std::string::npos) << log.all();
}

TEST(EchoShutdownTest, SighupIsAReloadAndServingGoesOn) {
  LogPipe log("echo_sighup");
  EchoProcess echo("io_uring", 0, {"--shards=1"}, log.path());
  ASSERT_NE(echo.port(), 0);
  auto clients = open_answered(echo.port(), 4);
  ASSERT_EQ(clients.size(), 4u);
  ::kill(echo.pid(), SIGHUP);
  ASSERT_NE(log.line_with("echo: SIGHUP: reload"), "");
  for (auto& c : clients) {
    ASSERT_TRUE(c->send("again\n"));
    EXPECT_EQ(c->recv_line(), "Line 1: again\n");
  }
  EXPECT_EQ(echo.terminate(), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, EchoDeathLogTest, ::testing::Values("off", "mprotect", "strict"),
                         [](const ::testing::TestParamInfo<const char*>& i) { return std::string(i.param); });

INSTANTIATE_TEST_SUITE_P(Pollers, EchoBinaryTest,
                         ::testing::Values(PollerKind::kIoUring, PollerKind::kEpoll, PollerKind::kPoll), kind_name);

}  // namespace
}  // namespace mnv::testing
