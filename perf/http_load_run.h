// perf/http_load_run.h — an HTTP/1.1 load run on the runtime's client (net/http/client.h).
//
// Closed loop: `connections` keep-alive connections, each one micro-process in one kernel (one OS
// thread: pin it with taskset), each keeping `depth` requests outstanding (depth 1: one request,
// wait for its response, send the next; depth > 1: pipelined). Each response's latency runs from
// when its request was written to when its last byte was read. After `warmup_s` it measures for
// `duration_s` (responses completed in that window count), or, with `requests` > 0, it sends
// exactly that many requests over all connections and measures them all. Every response's status
// is checked (and its body, when `expect_body` is set); a connection that fails (refused, reset,
// timed out, malformed response) ends, counts as an error, and the first error is described.
//
// Open loop: a constant-rate schedule (see run_open_loop), latency from each request's intended
// send time (coordinated omission corrected) and service time from its actual one, kept apart;
// per-status counts, answers later than a deadline (an exchange's tmax) counted as timeouts, win
// notices for a share of 200 answers (an OpenRTB bid's nurl, ${AUCTION_PRICE} filled in), a
// progress line once a second and the per-second percentiles kept for plotting.
//
// Nothing is allocated per request: the latencies go into metrics::LatencyHistograms, request
// bodies are built in advance (HttpLoadOptions::bodies).
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "metrics/latency_histogram.h"

namespace mnv::perf {

struct HttpLoadOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  int connections = 100;          // open loop: 0 picks enough for the rate (auto_connections)
  int depth = 1;                   // requests outstanding per connection (1..256)
  double warmup_s = 1.0;
  double duration_s = 5.0;
  std::int64_t requests = 0;       // > 0: exactly this many requests, all measured, no warm-up
  std::string method = "GET";
  std::string path = "/plaintext";
  std::string host_header = "localhost";
  std::string body;                // the request body (POST), sent with Content-Length
  // When not empty, request i's body is bodies[i % size] (built in advance, e.g. perf/rtb_mix.h),
  // and `body` is unused.
  std::vector<std::string> bodies;
  // Open loop, when not empty: request i's deadline in ms is deadlines_ms[i % size] (each bid
  // request's own tmax), instead of deadline_ms.
  std::vector<int> deadlines_ms;
  std::string fields;              // extra header lines, each "Name: value\r\n"
  int expect_status = 200;
  // When not empty, the statuses that are not errors (e.g. 200, 204 and 400 for a bidder sent a
  // share of malformed requests), instead of expect_status alone.
  std::vector<int> ok_statuses;
  std::string expect_body;         // when not empty, every body must equal it
  double timeout_s = 10.0;         // connect deadline, and each response's deadline
  // Open loop (run_open_loop): requests per second over all connections, and how late a send
  // may be before it counts as late.
  double rate = 0;
  double late_us = 1000;
  // Answers that come later than this after their intended send (closed loop: after their send)
  // count as timeouts (an exchange's tmax); 0: none do.
  double deadline_ms = 0;
  // Open loop: the share (0..1) of 200 answers whose body's "nurl" gets a win notice, a GET of its
  // path on the same connection with ${AUCTION_PRICE} replaced by clearing x the bid's "price",
  // followed by the same for its "burl" (billing) where the bid has one.
  double win_share = 0;
  double clearing = 0.8;
  // Open loop: a progress line once a second on `progress` (nullptr: none); rewritten in place
  // when `progress_tty`, else one line per second. `label` starts each line.
  std::FILE* progress = nullptr;
  bool progress_tty = false;
  std::string label;
  // Open loop: when shares_port > 0, GET /metrics from shares_host:shares_port (the server's
  // admin listener) once a second and show each shard's share of the growth of the series named
  // in shares_metric (comma-separated names, summed over their other labels) on the progress line.
  std::string shares_host = "127.0.0.1";
  int shares_port = 0;
  std::string shares_metric = "mnv_http_requests_total";
};

// One second of an open-loop run (the progress line, and the latency-over-time plot).
struct HttpLoadTick {
  double t_s = 0;                  // seconds since t0, at the end of this second
  std::uint64_t sent = 0, responses = 0, errors = 0, timeouts = 0;
  std::uint64_t p50_ns = 0, p90_ns = 0, p99_ns = 0, p999_ns = 0, max_ns = 0;  // of its responses
  std::string shares;              // "shard 0 51%, shard 1 49%" (with shares_port), else empty
};

struct HttpLoadResult {
  std::uint64_t responses = 0;     // measured responses
  double seconds = 0;              // the measured window
  double requests_per_s = 0;
  std::uint64_t p50_ns = 0, p90_ns = 0, p99_ns = 0, p999_ns = 0, max_ns = 0;
  double mean_ns = 0;
  int connections_ok = 0;          // connections that ended without an error
  std::uint64_t conn_errors = 0;   // connections ended by an error
  std::uint64_t bad_status = 0;    // responses with another status than expect_status
  std::uint64_t bad_body = 0;      // responses whose body differs from expect_body
  std::uint64_t errors() const { return conn_errors + bad_status + bad_body; }
  std::string first_error;
  // Open loop only. Latency (above) runs from each request's intended send time; service time
  // from when it was actually handed to the socket.
  std::uint64_t service_p50_ns = 0, service_p90_ns = 0, service_p99_ns = 0, service_p999_ns = 0, service_max_ns = 0;
  double target_rate = 0;          // the requested rate (0: a closed-loop run)
  double achieved_rate = 0;        // (sends - 1) / (last actual send - first intended send)
  std::uint64_t sent = 0;          // requests sent
  std::uint64_t unsent = 0;        // scheduled requests never sent (a connection failed or was full)
  std::uint64_t late_sends = 0;    // sent more than late_us after their intended time
  std::int64_t max_lag_ns = 0;     // the latest send's lag behind its intended time
  bool valid = true;               // open loop: every request sent and the achieved rate within 0.5%
  std::array<std::uint64_t, 600> status_counts{};  // responses per status (requests, not notices)
  std::uint64_t timeouts = 0;      // answers later than deadline_ms
  std::uint64_t wins_sent = 0;     // open loop: win notices sent (nurl)
  std::uint64_t bills_sent = 0;    // ... and billing notices (burl, where the bid has one)
  std::uint64_t win_errors = 0;    // notices answered with another status than 2xx
  int connections_used = 0;
  std::vector<HttpLoadTick> ticks; // open loop: one per second
  // The whole run's histograms (open loop), e.g. for a percentile spectrum (http_load_report.h).
  std::shared_ptr<metrics::LatencyHistogram> latency, service;
};

// The connections an open-loop run at `rate` opens when HttpLoadOptions::connections is 0: one
// per 1,000 requests per second, at least 4, at most 512 (a connection then carries about one
// request at a time while answers take under a millisecond; slower answers pipeline).
int auto_connections(double rate);

// Runs the closed-loop load `opt` describes on this OS thread. Never throws; bad options and
// failures show up in first_error / the error counts.
HttpLoadResult run_closed_loop(const HttpLoadOptions& opt);

// Open loop: each connection sends its share of a schedule at a constant `rate` over all
// connections, request i at t0 + i / rate (i = 0 .. rate * duration_s - 1, connection i % conns;
// absolute monotonic deadlines, so a late send does not shift the ones after it), whether or not
// earlier responses came back (at most 256 outstanding per connection: a full connection's sends
// wait and count as late). t0 is set once every connection is open. No warm-up. The run is
// invalid when a scheduled request was never sent or the achieved rate misses the target by more
// than 0.5%: its latencies would then not be those of the offered load.
HttpLoadResult run_open_loop(const HttpLoadOptions& opt);

// The one-line summary and the "RESULT key=value ..." line for scripts.
std::string describe(const HttpLoadResult& r);

}  // namespace mnv::perf
