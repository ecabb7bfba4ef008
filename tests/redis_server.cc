// tests/redis_server.cc — a real redis-server for tests (redis_server.h).
#include "tests/redis_server.h"

#include <arpa/inet.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>

namespace mnv::testing {
namespace {

// PING on a blocking socket; true on +PONG.
bool pings(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::write(fd, "PING\r\n", 6) == 6) {
    char buf[16];
    ssize_t n = ::read(fd, buf, sizeof buf);
    ok = n >= 5 && std::memcmp(buf, "+PONG", 5) == 0;
  }
  ::close(fd);
  return ok;
}

}  // namespace

int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), len);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

RedisServer::RedisServer(std::vector<std::string> extra) : extra_(std::move(extra)) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string base = tmp != nullptr ? tmp : "/tmp";
  char templ[512];
  std::snprintf(templ, sizeof templ, "%s/redis-XXXXXX", base.c_str());
  if (::mkdtemp(templ) == nullptr) return;
  dir_ = templ;
  port_ = free_loopback_port();
  start();
}

RedisServer::~RedisServer() {
  resume();
  stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

sockaddr_in RedisServer::addr() const {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port_));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

bool RedisServer::start() {
  if (dir_.empty()) return false;
  std::string port = std::to_string(port_);
  std::vector<std::string> args = {"/usr/bin/redis-server", "--port", port, "--bind", "127.0.0.1",
                                   "--dir", dir_, "--save", "", "--appendonly", "no",
                                   "--daemonize", "no", "--logfile", dir_ + "/redis.log",
                                   "--enable-debug-command", "local"};
  args.insert(args.end(), extra_.begin(), extra_.end());
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // (never outlives the test, even a killed one)
    std::vector<char*> argv;
    for (std::string& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (pid < 0) return false;
  pid_ = pid;
  for (int i = 0; i < 1000; ++i) {  // 10 s
    if (pings(port_)) return true;
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) break;  // it exited (see redis.log)
    timespec ts{0, 10'000'000};
    ::nanosleep(&ts, nullptr);
  }
  std::fprintf(stderr, "redis-server on port %d did not answer PING: see %s/redis.log\n", port_, dir_.c_str());
  stop();
  return false;
}

void RedisServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

void RedisServer::pause() {
  if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void RedisServer::resume() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
}

std::string RedisServer::cli(const std::string& args) const {
  std::string cmd = "/usr/bin/redis-cli -p " + std::to_string(port_) + " " + args + " 2>&1";
  std::string out;
  if (FILE* f = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    ::pclose(f);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace mnv::testing
