// tests/redis_server.h — (tests, benchmarks) a real redis-server started on a loopback port.
//
// Each server gets a fresh directory under $TEST_TMPDIR (or /tmp), no persistence (no RDB, no
// AOF), and is stopped and its directory removed when the object goes; start() again brings it
// back on the same port (a restart), pause()/resume() stop and continue it (SIGSTOP/SIGCONT: a
// server that is alive but answers nothing). Needs /usr/bin/redis-server and redis-cli (Debian
// redis-server, redis-tools; tools/mnv setup installs them).
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace mnv::testing {

// A loopback TCP port nobody listens on now (bound to port 0 and released).
int free_loopback_port();

class RedisServer {
 public:
  // `extra`: more redis-server options ("--cluster-enabled", "yes", ...). Starts it; ok() says
  // whether it answered PING within 10 s.
  explicit RedisServer(std::vector<std::string> extra = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  bool ok() const { return pid_ > 0; }
  int port() const { return port_; }
  sockaddr_in addr() const;
  const std::string& dir() const { return dir_; }

  // (Re)starts it on the same port and waits for PING; false if it did not answer.
  bool start();
  // SIGTERM, and waits for it to exit.
  void stop();
  void pause();
  void resume();
  // Runs `redis-cli -p PORT <args>` (a shell command line) and returns its output, trimmed.
  std::string cli(const std::string& args) const;

 private:
  std::vector<std::string> extra_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace mnv::testing
