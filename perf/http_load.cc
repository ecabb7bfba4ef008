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
// Steps: --rate=1000,2000,4000 runs one open-loop step per rate, --duration_s each, one after the
// other (fresh connections each; --conns=0 picks enough for each rate). While a step runs, a
// progress line once a second goes to stderr (rewritten in place on a terminal; --progress=off).
// --out=DIR writes steps.csv, timeline.csv and the percentile spectra (perf/http_load_report.h)
// for tools/plot_latency.sh. Request bodies: --body_file (one), or --bodies_file (one body per
// line, request i gets line i mod n, e.g. perf/rtb_mix_dump's output), or --rtb_mix=N: N seeded
// OpenRTB bid requests (perf/rtb_mix.h) POSTed to /openrtb2/bid; --win_share sends win notices.
//
// Output: per step one human-readable line, then one "RESULT key=value ..." line for scripts;
// with several steps, then the step table. Exit status 1 if there were errors (a connection
// refused, reset, timed out or given a malformed response; a wrong status or body) or a step was
// invalid, 2 on bad flags.
//
// Run: bazel build --config=opt //perf:http_load &&
//      taskset -c 1 bazel-bin/perf/http_load --port=PORT --conns=100 --depth=1 --duration_s=5
#include <stdio.h>

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "perf/http_load_report.h"
#include "perf/http_load_run.h"
#include "perf/rtb_mix.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "server address (numeric)");
ABSL_FLAG(int, port, 0, "server port (required)");
ABSL_FLAG(int, conns, 100, "keep-alive connections (open loop: 0 picks one per 1000 req/s, 4..512)");
ABSL_FLAG(int, depth, 1, "requests outstanding per connection (1: ping-pong; more: pipelined), 1..256");
ABSL_FLAG(double, warmup_s, 1.0, "seconds of load before measuring");
ABSL_FLAG(double, duration_s, 5.0, "seconds to measure (unless --requests > 0)");
ABSL_FLAG(int64_t, requests, 0, "if > 0, send exactly this many requests and measure them all");
ABSL_FLAG(std::string, method, "GET", "request method");
ABSL_FLAG(std::string, path, "/plaintext", "request target");
ABSL_FLAG(std::string, host_header, "localhost", "the Host field's value");
ABSL_FLAG(std::string, body_file, "", "a file whose bytes are each request's body (Content-Length)");
ABSL_FLAG(int, rtb_mix, 0,
          "if > 0: POST this many pre-built OpenRTB 2.6 bid requests (perf/rtb_mix.h) in turn to /openrtb2/bid, "
          "200/204/400 counting as answers (unless --ok_status); without --deadline_ms, an answer later than its "
          "request's tmax is a timeout");
ABSL_FLAG(uint64_t, seed, 1, "the --rtb_mix seed");
ABSL_FLAG(std::string, bodies_file, "", "a file of request bodies, one per line; request i gets line i mod n");
ABSL_FLAG(std::vector<std::string>, header, {}, "extra header lines 'Name: value', comma-separated");
ABSL_FLAG(int, expect_status, 200, "the status every response must have");
ABSL_FLAG(std::vector<std::string>, ok_status, {}, "statuses that are not errors (e.g. 200,204,400); default: --expect_status");
ABSL_FLAG(std::string, expect_body, "", "if set, the body every response must have");
ABSL_FLAG(std::vector<std::string>, rate, {},
          "open loop: requests per second over all connections on a fixed schedule; several (comma-separated) run "
          "one step each, R or R:SECONDS (else --duration_s); none: closed loop");
ABSL_FLAG(std::string, after_step, "",
          "open loop: a shell command run after each step (not timed), with $STEP set to its number (e.g. a scrape)");
ABSL_FLAG(double, deadline_ms, 0, "answers later than this after their intended send (closed loop: their send) are timeouts");
ABSL_FLAG(double, win_share, 0, "open loop: share of 200 answers whose nurl gets a win notice");
ABSL_FLAG(double, clearing, 0.8, "open loop: the win notice's clearing price as a share of the bid's price");
ABSL_FLAG(std::string, progress, "auto", "open loop progress line on stderr: auto (once a second), off");
ABSL_FLAG(std::string, shares_from, "",
          "open loop: HOST:PORT of the server's admin listener; the progress line then shows each shard's share of "
          "--shares_metric's growth, from GET /metrics once a second");
ABSL_FLAG(std::string, shares_metric, "mnv_http_requests_total", "the counter(s), comma-separated, whose per-shard growth --shares_from shows");
ABSL_FLAG(std::string, out, "", "a directory to write steps.csv, timeline.csv and the spectra into (it must exist)");
ABSL_FLAG(double, late_us, 1000, "open loop: a send this much later than scheduled counts as late");
ABSL_FLAG(double, timeout_s, 10.0, "connect deadline and per-response deadline");

namespace {

bool parse_number(const std::string& text, double* out) {
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return !text.empty() && end != nullptr && *end == '\0';
}

}  // namespace

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
  opt.late_us = absl::GetFlag(FLAGS_late_us);
  opt.deadline_ms = absl::GetFlag(FLAGS_deadline_ms);
  opt.win_share = absl::GetFlag(FLAGS_win_share);
  opt.clearing = absl::GetFlag(FLAGS_clearing);
  for (const std::string& h : absl::GetFlag(FLAGS_header)) {
    if (h.find(':') == std::string::npos) {
      fprintf(stderr, "http_load: --header='%s': give 'Name: value'\n", h.c_str());
      return 2;
    }
    opt.fields += h + "\r\n";
  }
  for (const std::string& t : absl::GetFlag(FLAGS_ok_status)) {
    double v = 0;
    if (!parse_number(t, &v) || v < 100 || v > 599) {
      fprintf(stderr, "http_load: --ok_status: '%s' is not a status (100..599)\n", t.c_str());
      return 2;
    }
    opt.ok_statuses.push_back(static_cast<int>(v));
  }
  std::vector<double> rates, durations;
  for (const std::string& t : absl::GetFlag(FLAGS_rate)) {
    double v = 0, d = opt.duration_s;
    const std::size_t colon = t.find(':');
    if (!parse_number(t.substr(0, colon), &v) || !(v > 0) ||
        (colon != std::string::npos && (!parse_number(t.substr(colon + 1), &d) || !(d > 0)))) {
      fprintf(stderr, "http_load: --rate: '%s' is not a rate above 0 (requests per second), optionally :SECONDS\n",
              t.c_str());
      return 2;
    }
    rates.push_back(v);
    durations.push_back(d);
  }
  if (opt.port <= 0 || opt.port > 65535) {
    fprintf(stderr, "http_load: --port=%d: give the server's TCP port (1..65535)\n", opt.port);
    return 2;
  }
  if (opt.depth < 1 || opt.depth > 256 || opt.connections < 0 || (opt.connections == 0 && rates.empty())) {
    fprintf(stderr, "http_load: --depth=%d --conns=%d: depth must be 1..256 and conns at least 1 (0: auto, open loop only)\n",
            opt.depth, opt.connections);
    return 2;
  }
  if (opt.win_share < 0 || opt.win_share > 1) {
    fprintf(stderr, "http_load: --win_share=%g: give a share from 0 to 1\n", opt.win_share);
    return 2;
  }
  if (std::string sf = absl::GetFlag(FLAGS_shares_from); !sf.empty()) {
    const std::size_t colon = sf.rfind(':');
    double port = 0;
    if (colon == std::string::npos || !parse_number(sf.substr(colon + 1), &port) || port < 1 || port > 65535) {
      fprintf(stderr, "http_load: --shares_from=%s: give HOST:PORT of the admin listener\n", sf.c_str());
      return 2;
    }
    opt.shares_host = sf.substr(0, colon);
    opt.shares_port = static_cast<int>(port);
  }
  opt.shares_metric = absl::GetFlag(FLAGS_shares_metric);
  const std::string progress = absl::GetFlag(FLAGS_progress);
  if (progress != "auto" && progress != "off") {
    fprintf(stderr, "http_load: --progress=%s: give auto or off\n", progress.c_str());
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
  if (std::string f = absl::GetFlag(FLAGS_bodies_file); !f.empty()) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      fprintf(stderr, "http_load: --bodies_file=%s cannot be read\n", f.c_str());
      return 2;
    }
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) opt.bodies.push_back(line);
    }
    if (opt.bodies.empty()) {
      fprintf(stderr, "http_load: --bodies_file=%s has no bodies (one per line)\n", f.c_str());
      return 2;
    }
  }
  if (int n = absl::GetFlag(FLAGS_rtb_mix); n > 0) {
    mnv::perf::RtbMix mix = mnv::perf::make_rtb_mix({.seed = absl::GetFlag(FLAGS_seed), .count = n});
    opt.bodies = std::move(mix.bodies);
    if (opt.deadline_ms <= 0) opt.deadlines_ms = std::move(mix.tmax_ms);
    opt.method = "POST";
    opt.path = mnv::perf::kRtbPath;
    opt.fields = mnv::perf::kRtbFields + opt.fields;
    if (opt.ok_statuses.empty()) opt.ok_statuses = {200, 204, 400};
    fprintf(stderr, "http_load: %d OpenRTB requests (%zu malformed), mean %.0f bytes, seed %llu\n", n, mix.malformed,
            mix.mean_bytes, static_cast<unsigned long long>(absl::GetFlag(FLAGS_seed)));
  }
  const std::string dir = absl::GetFlag(FLAGS_out);
  if (rates.empty()) {
    mnv::perf::HttpLoadStep step;
    step.result = mnv::perf::run_closed_loop(opt);
    printf("%s\n", mnv::perf::describe(step.result).c_str());
    std::string error;
    if (!dir.empty() && !mnv::perf::write_step_files(dir, {step}, &error)) {
      fprintf(stderr, "http_load: --out=%s: %s\n", dir.c_str(), error.c_str());
      return 1;
    }
    return step.result.errors() == 0 && step.result.responses > 0 ? 0 : 1;
  }
  if (progress == "auto") {
    opt.progress = stderr;
    opt.progress_tty = isatty(STDERR_FILENO) != 0;
  }
  std::vector<mnv::perf::HttpLoadStep> steps;
  double at = 0;
  bool ok = true;
  for (std::size_t k = 0; k < rates.size(); ++k) {
    opt.rate = rates[k];
    opt.duration_s = durations[k];
    char label[64];
    snprintf(label, sizeof label, "[step %zu/%zu, %.0f/s] ", k + 1, rates.size(), rates[k]);
    opt.label = label;
    mnv::perf::HttpLoadStep step;
    step.result = mnv::perf::run_open_loop(opt);
    step.start_s = at;
    at += step.result.ticks.empty() ? opt.duration_s : step.result.ticks.back().t_s;
    printf("%s%s\n", label, mnv::perf::describe(step.result).c_str());
    fflush(stdout);
    ok = ok && step.result.errors() == 0 && step.result.responses > 0 && step.result.valid;
    steps.push_back(std::move(step));
    if (const std::string cmd = absl::GetFlag(FLAGS_after_step); !cmd.empty()) {
      setenv("STEP", std::to_string(k + 1).c_str(), 1);
      if (int rc = std::system(cmd.c_str()); rc != 0) fprintf(stderr, "http_load: --after_step exited with %d\n", rc);
    }
  }
  if (steps.size() > 1) printf("\n%s", mnv::perf::step_table(steps).c_str());
  if (!dir.empty()) {
    std::string error;
    if (!mnv::perf::write_step_files(dir, steps, &error)) {
      fprintf(stderr, "http_load: --out=%s: %s\n", dir.c_str(), error.c_str());
      return 1;
    }
  }
  return ok ? 0 : 1;
}
