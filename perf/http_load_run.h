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
// Nothing is allocated per request: the latencies go into one metrics::LatencyHistogram.
#pragma once

#include <cstdint>
#include <string>

namespace mnv::perf {

struct HttpLoadOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  int connections = 100;
  int depth = 1;                   // requests outstanding per connection (1..256)
  double warmup_s = 1.0;
  double duration_s = 5.0;
  std::int64_t requests = 0;       // > 0: exactly this many requests, all measured, no warm-up
  std::string method = "GET";
  std::string path = "/plaintext";
  std::string host_header = "localhost";
  std::string body;                // the request body (POST), sent with Content-Length
  int expect_status = 200;
  std::string expect_body;         // when not empty, every body must equal it
  double timeout_s = 10.0;         // connect deadline, and each response's deadline
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
};

// Runs the closed-loop load `opt` describes on this OS thread. Never throws; bad options and
// failures show up in first_error / the error counts.
HttpLoadResult run_closed_loop(const HttpLoadOptions& opt);

// The one-line summary and the "RESULT key=value ..." line for scripts.
std::string describe(const HttpLoadResult& r);

}  // namespace mnv::perf
