// perf/idle_memory.cc — memory per idle connection of an echo server (apps/echo,
// perf/epoll_echo_server).
//
// Reads the server's VmRSS (/proc/PID/status), opens --conns connections (at most
// --max_connecting opening at once), sends one --size-byte line on each and checks its reply,
// then, with every connection open and idle, reads VmRSS again and reports
// (after - before) / connections in KiB; then closes everything. This counts the server's user
// memory per connection (buffers, connection state, micro-heaps), not the kernel's socket
// buffers, which are the same for every server.
//
// Needs RLIMIT_NOFILE above --conns on both sides: this client raises its soft limit to the hard
// limit (run it under `ulimit -n` as root for more); the server must do the same.
//
// Output: one human-readable line, then one "RESULT mode=idle key=value ..." line. Exit status 1
// on errors, 2 on bad flags.
//
// Run: bazel-bin/perf/idle_memory --port=PORT --server_pid=PID --conns=10000
#include <stdio.h>

#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "perf/echo_client.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "server address");
ABSL_FLAG(int, port, 0, "server port (required)");
ABSL_FLAG(int, conns, 10000, "connections to hold idle");
ABSL_FLAG(int, size, 64, "bytes of the one line sent on each connection, the '\\n' included");
ABSL_FLAG(double, timeout_s, 60.0, "hard bound on opening every connection");
ABSL_FLAG(int, server_pid, 0, "the server's pid (required for the RSS figures)");
ABSL_FLAG(int, max_connecting, 64, "connections opening at once");
ABSL_FLAG(double, settle_s, 2.0, "seconds every connection stays idle before the server's RSS is read");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  mnv::perf::IdleOptions opt;
  opt.host = absl::GetFlag(FLAGS_host);
  opt.port = absl::GetFlag(FLAGS_port);
  opt.connections = absl::GetFlag(FLAGS_conns);
  opt.msg_size = absl::GetFlag(FLAGS_size);
  opt.timeout_s = absl::GetFlag(FLAGS_timeout_s);
  opt.server_pid = absl::GetFlag(FLAGS_server_pid);
  opt.max_connecting = absl::GetFlag(FLAGS_max_connecting);
  opt.settle_s = absl::GetFlag(FLAGS_settle_s);
  if (opt.port <= 0 || opt.port > 65535) {
    fprintf(stderr, "idle_memory: --port is required (1..65535)\n");
    return 2;
  }
  if (opt.timeout_s <= 0) {
    fprintf(stderr, "idle_memory: --timeout_s must be > 0\n");
    return 2;
  }
  mnv::perf::IdleResult r = mnv::perf::run_idle(opt);
  printf("%s\n%s\n", mnv::perf::summary_line(opt, r).c_str(), mnv::perf::result_line(opt, r).c_str());
  fflush(stdout);
  return r.errors == 0 ? 0 : 1;
}
