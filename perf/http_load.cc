// perf/http_load.cc — an HTTP/1.1 load tool on the runtime's client (perf/http_load_run.h).
//
// Closed loop: --conns keep-alive connections, each keeping --depth requests outstanding, for
// --duration_s after --warmup_s (or exactly --requests requests), GET by default or any method
// with a body from --body_file. Open loop with --rate=R: requests at R per second on a fixed
// schedule for --duration_s, latency from each request's intended send time and service time
// from its actual one; the run is INVALID (exit 1) when the achieved rate misses R by > 0.5%.
// Every response's status (and with --expect_body its body) is checked. One OS thread: pin it
// with taskset.
//
// Output: one human-readable line, then one "RESULT key=value ..." line for scripts. Exit status
// 1 if there were errors (a connection refused, reset, timed out or given a malformed response;
// a wrong status or body), 2 on bad flags.
//
// Run: bazel build --config=opt //perf:http_load &&
//      taskset -c 1 bazel-bin/perf/http_load --port=PORT --conns=100 --depth=1 --duration_s=5
#include <stdio.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "perf/http_load_run.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "server address (numeric)");
ABSL_FLAG(int, port, 0, "server port (required)");
ABSL_FLAG(int, conns, 100, "keep-alive connections");
ABSL_FLAG(int, depth, 1, "requests outstanding per connection (1: ping-pong; more: pipelined), 1..256");
ABSL_FLAG(double, warmup_s, 1.0, "seconds of load before measuring");
ABSL_FLAG(double, duration_s, 5.0, "seconds to measure (unless --requests > 0)");
ABSL_FLAG(int64_t, requests, 0, "if > 0, send exactly this many requests and measure them all");
ABSL_FLAG(std::string, method, "GET", "request method");
ABSL_FLAG(std::string, path, "/plaintext", "request target");
ABSL_FLAG(std::string, host_header, "localhost", "the Host field's value");
ABSL_FLAG(std::string, body_file, "", "a file whose bytes are each request's body (Content-Length)");
ABSL_FLAG(int, expect_status, 200, "the status every response must have");
ABSL_FLAG(std::string, expect_body, "", "if set, the body every response must have");
ABSL_FLAG(double, rate, 0, "if > 0, open loop: requests per second over all connections, on a fixed schedule");
ABSL_FLAG(double, late_us, 1000, "open loop: a send this much later than scheduled counts as late");
ABSL_FLAG(double, timeout_s, 10.0, "connect deadline and per-response deadline");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  mnv::perf::HttpLoadOptions opt;
  opt.host = absl::GetFlag(FLAGS_host);
  opt.port = absl::GetFlag(FLAGS_port);
  opt.connections = absl::GetFlag(FLAGS_conns);
  opt.depth = absl::GetFlag(FLAGS_depth);
  opt.warmup_s = absl::GetFlag(FLAGS_warmup_s);
  opt.duration_s = absl::GetFlag(FLAGS_duration_s);
  opt.requests = absl::GetFlag(FLAGS_requests);
  opt.method = absl::GetFlag(FLAGS_method);
  opt.path = absl::GetFlag(FLAGS_path);
  opt.host_header = absl::GetFlag(FLAGS_host_header);
  opt.expect_status = absl::GetFlag(FLAGS_expect_status);
  opt.expect_body = absl::GetFlag(FLAGS_expect_body);
  opt.timeout_s = absl::GetFlag(FLAGS_timeout_s);
  opt.rate = absl::GetFlag(FLAGS_rate);
  opt.late_us = absl::GetFlag(FLAGS_late_us);
  if (opt.port <= 0 || opt.port > 65535) {
    fprintf(stderr, "http_load: --port=%d: give the server's TCP port (1..65535)\n", opt.port);
    return 2;
  }
  if (opt.depth < 1 || opt.depth > 256 || opt.connections < 1) {
    fprintf(stderr, "http_load: --depth=%d --conns=%d: depth must be 1..256 and conns at least 1\n", opt.depth,
            opt.connections);
    return 2;
  }
  if (std::string f = absl::GetFlag(FLAGS_body_file); !f.empty()) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      fprintf(stderr, "http_load: --body_file=%s cannot be read\n", f.c_str());
      return 2;
    }
    std::ostringstream s;
    s << in.rdbuf();
    opt.body = s.str();
  }
  mnv::perf::HttpLoadResult r = opt.rate > 0 ? mnv::perf::run_open_loop(opt) : mnv::perf::run_closed_loop(opt);
  printf("%s\n", mnv::perf::describe(r).c_str());
  return r.errors() == 0 && r.responses > 0 && r.valid ? 0 : 1;
}
