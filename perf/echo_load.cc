// perf/echo_load.cc — ping-pong load client for the echo benchmark (apps/echo and
// perf/epoll_echo_server).
//
// Opens --conns connections to --host:--port, each with exactly one line outstanding: it sends a
// line of --size bytes (--size-1 printable bytes + '\n'), waits for the whole reply
// "Line N: <line>", checks it, records the round-trip latency and sends the next line. After
// --warmup_s of ping-pong (counted from when every connection has answered once) it measures for
// --duration_s, or for exactly --messages messages when that is > 0. With --server_pid it also
// reads the server's utime+stime from /proc/PID/stat around the measured window and reports
// server CPU per message. One single-threaded epoll loop; see perf/echo_client.h.
//
// Output: one human-readable line, then one "RESULT key=value ..." line for scripts. Exit status
// 1 if there were errors (refused/reset connections, wrong replies, a timeout), 2 on bad flags.
//
// Run: bazel build --config=opt //perf:echo_load &&
//      taskset -c 0 bazel-bin/perf/echo_load --port=PORT --server_pid=PID
#include <stdio.h>

#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "perf/echo_client.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "server address");
ABSL_FLAG(int, port, 0, "server port (required)");
ABSL_FLAG(int, conns, 1000, "connections, each with one line outstanding");
ABSL_FLAG(int, size, 64, "bytes per line, the '\\n' included (1..8191)");
ABSL_FLAG(double, warmup_s, 1.0, "seconds of ping-pong before measuring");
ABSL_FLAG(double, duration_s, 5.0, "seconds to measure (unless --messages > 0)");
ABSL_FLAG(int64_t, messages, 0, "if > 0, measure exactly this many messages instead of a duration");
ABSL_FLAG(double, timeout_s, 60.0, "hard bound on the whole run");
ABSL_FLAG(int, server_pid, 0, "if > 0, the server's pid: report its CPU time per message");
ABSL_FLAG(int, max_connecting, 64, "connections opening at once");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  mnv::perf::LoadOptions opt;
  opt.host = absl::GetFlag(FLAGS_host);
  opt.port = absl::GetFlag(FLAGS_port);
  opt.connections = absl::GetFlag(FLAGS_conns);
  opt.msg_size = absl::GetFlag(FLAGS_size);
  opt.warmup_s = absl::GetFlag(FLAGS_warmup_s);
  opt.duration_s = absl::GetFlag(FLAGS_duration_s);
  opt.messages = absl::GetFlag(FLAGS_messages);
  opt.timeout_s = absl::GetFlag(FLAGS_timeout_s);
  opt.server_pid = absl::GetFlag(FLAGS_server_pid);
  opt.max_connecting = absl::GetFlag(FLAGS_max_connecting);
  if (opt.port <= 0 || opt.port > 65535) {
    fprintf(stderr, "echo_load: --port is required (1..65535)\n");
    return 2;
  }
  if (opt.warmup_s < 0 || opt.duration_s <= 0 || opt.timeout_s <= 0 || opt.messages < 0) {
    fprintf(stderr, "echo_load: --warmup_s must be >= 0, --duration_s and --timeout_s > 0, --messages >= 0\n");
    return 2;
  }
  mnv::perf::LoadResult r = mnv::perf::run_load(opt);
  printf("%s\n%s\n", mnv::perf::summary_line(opt, r).c_str(), mnv::perf::result_line(opt, r).c_str());
  fflush(stdout);
  return r.errors() == 0 ? 0 : 1;
}
