// perf/http_load_common.h — what the closed and the open loop (http_load_run.cc,
// http_load_open.cc) share: a connection's slot, error notes, client options, the status and body
// checks, the option checks, and launch() (one kernel on this OS thread, a process per
// connection plus the loop's helpers, run until all end). Private to perf:http_load_run.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "mem/heap_pool.h"
#include "metrics/latency_histogram.h"
#include "net/http/client.h"
#include "perf/http_load_run.h"
#include "runtime/kernel.h"
#include "runtime/raise.h"

namespace mnv::perf::detail {

struct Conn {
  http::Client* client = nullptr;
};

// Counts a connection that ended by an error, and describes the first one.
void note_failure(HttpLoadResult* result, Conn* conn);
// A finally handler that does just that.
Finally failed(HttpLoadResult* result, Conn* conn);
http::ClientOptions client_options(const HttpLoadOptions& opt, std::span<char> scratch);
// Whether `status` is one the options accept (ok_statuses, else expect_status).
bool status_ok(const HttpLoadOptions& opt, int status);
// Counts a response's status and body against the options.
void check(const HttpLoadOptions& opt, const http::Response& r, const char* body, HttpLoadResult* res);
void fill_latency(const metrics::LatencyHistogram& h, HttpLoadResult* res);
// Checks the options both loops share; false (with the error in *res) when they are bad.
bool check_options(const HttpLoadOptions& opt, sockaddr_storage* addr, socklen_t* len, HttpLoadResult* res);

// Starts `extra(kernel, pool, run)` (the loop's helper processes) and `fn(kernel, pool, run,
// conn[i], i)` for every connection in a kernel and runs it until all end.
template <typename RunT, typename F, typename G>
bool launch(int connections, RunT* run, F fn, G extra, HttpLoadResult& res) {
  KernelConfig kc;
  kc.max_fds = static_cast<std::size_t>(connections) + 64;
  kc.max_processes = static_cast<std::size_t>(connections) + 8;
  kc.exit_when_idle = true;
  std::unique_ptr<Kernel> k = Kernel::create(kc);
  if (k == nullptr) {
    res.first_error = "the kernel could not be created (see the log line above)";
    ++res.conn_errors;
    return false;
  }
  HeapPool pool(32, static_cast<std::size_t>(connections) + 2);
  auto conns = std::make_unique<Conn[]>(static_cast<std::size_t>(connections));
  if (!extra(*k, pool, run)) {
    res.first_error = "could not start the progress process (process table or heap pool full)";
    ++res.conn_errors;
  }
  for (int i = 0; i < connections; ++i) {
    if (!fn(*k, pool, run, &conns[static_cast<std::size_t>(i)], i)) {
      res.first_error = "could not start connection " + std::to_string(i) + " (process table or heap pool full)";
      ++res.conn_errors;
      break;
    }
  }
  k->run();
  return true;
}

}  // namespace mnv::perf::detail
