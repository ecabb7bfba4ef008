// tests/child_server.h — a server under test in a child process, as the binary tests run one.
//
// The child runs a body (a whole server: run_server() of a test service, or execv() of a built
// binary) with its stdout on a pipe; the parent reads the ports from the skeleton's first lines
// ("listening on 127.0.0.1:PORT", and "admin listening on 127.0.0.1:PORT" when asked) and then
// closes the pipe. The child is SIGKILLed and reaped when the object goes, so a failed assertion
// leaves no process behind. The two file helpers every such test needs come with it (runfiles.h).
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tests/runfiles.h"

namespace mnv::testing {

struct ChildOptions {
  bool admin = false;       // also wait for the admin listener's line
  std::string stderr_path;  // the child's stderr goes there ("" = inherited)
  rlim_t max_files = 0;     // RLIMIT_NOFILE in the child (0 = inherited)
};

class ChildServer {
 public:
  // Forks; `body`'s return value is the child's exit status. Returns once the child printed
  // its listening line(s) or closed its stdout (port() is then 0).
  explicit ChildServer(const std::function<int()>& body, const ChildOptions& options = {});
  // execv() of argv[0] with argv (exit status 127 if it cannot run).
  static std::function<int()> exec(std::vector<std::string> argv);
  ~ChildServer();
  ChildServer(const ChildServer&) = delete;
  ChildServer& operator=(const ChildServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::uint16_t admin_port() const { return admin_; }
  pid_t pid() const { return pid_; }
  // SIGTERM, then wait(): the exit status (or -1).
  int terminate();
  // Waits for it to exit: the exit status, or -1 when it did not exit by itself (a signal).
  int wait();
  // utime + stime in clock ticks (from /proc/PID/stat).
  long cpu_ticks() const;

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::uint16_t admin_ = 0;
};

}  // namespace mnv::testing
