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
// With --rounds=N it does that N times (N * --conns connections opened and closed in all), and
// after each round, once every connection is closed and --settle_s have passed, reads VmRSS
// again: load that has ended should give its memory back (the RSS returns to about where it
// was before the first round).
//
// Output: per round, one human-readable line, then one "RESULT mode=idle key=value ..." line;
// with --server_pid, a last "RESULT mode=give_back ..." line (RSS before the first round, the
// highest with connections held, after the last round's close). Exit status 1 on errors, 2 on
// bad flags.
//
// Run: bazel-bin/perf/idle_memory --port=PORT --server_pid=PID --conns=10000 [--rounds=2]
#include <stdio.h>
#include <time.h>

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
ABSL_FLAG(double, settle_s, 2.0,
          "seconds every connection stays idle before the server's RSS is read (and, with --rounds, "
          "seconds after closing them all before it is read again)");
ABSL_FLAG(int, rounds, 1, "times to open --conns connections, hold them idle, and close them all");

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
  const int rounds = absl::GetFlag(FLAGS_rounds);
  if (rounds < 1) {
    fprintf(stderr, "idle_memory: --rounds must be >= 1\n");
    return 2;
  }
  std::int64_t first_before = -1, peak = -1, closed = -1;
  std::uint64_t errors = 0;
  for (int round = 0; round < rounds; ++round) {
    mnv::perf::IdleResult r = mnv::perf::run_idle(opt);  // (closes every connection on return)
    printf("%s\n%s\n", mnv::perf::summary_line(opt, r).c_str(), mnv::perf::result_line(opt, r).c_str());
    fflush(stdout);
    errors += r.errors;
    if (round == 0) first_before = r.rss_before_kib;
    if (r.rss_fresh_kib > peak) peak = r.rss_fresh_kib;
    if (r.rss_after_kib > peak) peak = r.rss_after_kib;
    if (opt.server_pid > 0) {
      timespec ts{static_cast<time_t>(opt.settle_s),
                  static_cast<long>((opt.settle_s - static_cast<time_t>(opt.settle_s)) * 1e9)};
      nanosleep(&ts, nullptr);
      if (!mnv::perf::read_proc_rss_kib(opt.server_pid, &closed)) closed = -1;
    }
  }
  if (opt.server_pid > 0 && first_before > 0 && closed >= 0) {
    printf("idle_memory: %d connections opened and closed in %d round(s): server RSS %lld KiB before, %lld KiB at "
           "the peak, %lld KiB %.1f s after the last close (%+.1f%%)\n",
           rounds * opt.connections, rounds, static_cast<long long>(first_before), static_cast<long long>(peak),
           static_cast<long long>(closed), opt.settle_s, 100.0 * static_cast<double>(closed - first_before) / first_before);
    printf("RESULT mode=give_back rounds=%d conns=%d rss_before_kib=%lld rss_peak_kib=%lld rss_closed_kib=%lld "
           "growth_pct=%.1f\n",
           rounds, opt.connections, static_cast<long long>(first_before), static_cast<long long>(peak),
           static_cast<long long>(closed), 100.0 * static_cast<double>(closed - first_before) / first_before);
  }
  return errors == 0 ? 0 : 1;
}
