// perf/http_load_run.cc — the closed-loop HTTP load run (http_load_run.h).
#include "perf/http_load_run.h"

#include <cstdio>
#include <memory>
#include <string_view>

#include "mem/heap_pool.h"
#include "metrics/latency_histogram.h"
#include "net/http/client.h"
#include "net/service.h"
#include "runtime/clock.h"
#include "runtime/kernel.h"
#include "runtime/raise.h"

namespace mnv::perf {
namespace {

// What every connection shares (one OS thread: no atomics needed).
struct Run {
  const HttpLoadOptions* opt;
  http::Request request;
  sockaddr_storage addr;
  socklen_t addr_len;
  std::int64_t measure_from = 0;
  std::int64_t stop_at = 0;
  std::int64_t to_send = 0;  // requests left to send (count mode), else a huge number
  std::int64_t first_send = 0, last_response = 0;
  metrics::LatencyHistogram latency;
  HttpLoadResult result;
};

struct Conn {
  http::Client* client = nullptr;
};

Finally failed(Run* run, Conn* conn) {
  ++run->result.conn_errors;
  if (run->result.first_error.empty()) {
    char buf[400];
    if (conn->client != nullptr) {
      run->result.first_error = conn->client->explain(error(), buf, sizeof buf);
    } else {
      run->result.first_error = error().describe(buf, sizeof buf);
    }
  }
  co_return;
}

Thread connection(Run* run, Conn* conn) {
  co_await finally(failed(run, conn));
  const HttpLoadOptions& opt = *run->opt;
  char scratch[2048];
  http::ClientOptions co;
  co.host = opt.host_header;
  co.connect_timeout_ns = static_cast<std::int64_t>(opt.timeout_s * 1e9);
  co.response_timeout_ns = co.connect_timeout_ns;
  co.scratch = scratch;
  http::Client c(co);
  conn->client = &c;
  co_await c.connect(reinterpret_cast<const sockaddr*>(&run->addr), run->addr_len);
  std::int64_t sent_at[http::Client::kMaxOutstanding];
  std::uint64_t sent = 0, received = 0;
  char body[256];
  const std::string_view expect = opt.expect_body;
  for (;;) {
    std::int64_t now = monotonic_ns();
    while (c.outstanding() < static_cast<std::uint32_t>(opt.depth) && now < run->stop_at && run->to_send > 0) {
      --run->to_send;
      co_await c.send(run->request);
      if (run->first_send == 0) run->first_send = now;
      sent_at[sent++ % http::Client::kMaxOutstanding] = now;
    }
    if (c.outstanding() == 0) break;
    http::Response r = co_await c.receive(body);
    std::int64_t t = monotonic_ns();
    std::int64_t t0 = sent_at[received++ % http::Client::kMaxOutstanding];
    run->last_response = t;
    if (t >= run->measure_from && t < run->stop_at) {
      run->latency.record(static_cast<std::uint64_t>(t - t0));
      ++run->result.responses;
    }
    if (r.status != opt.expect_status) ++run->result.bad_status;
    if (!expect.empty() && (r.body_size != expect.size() || std::string_view(body, r.body_copied) != expect)) {
      ++run->result.bad_body;
    }
    if (c.closed()) break;  // the server closes after this response (Connection: close)
  }
  conn->client = nullptr;
  ++run->result.connections_ok;
}

}  // namespace

HttpLoadResult run_closed_loop(const HttpLoadOptions& opt) {
  auto run = std::make_unique<Run>();
  run->opt = &opt;
  HttpLoadResult& res = run->result;
  if (opt.depth < 1 || opt.depth > static_cast<int>(http::Client::kMaxOutstanding) || opt.connections < 1) {
    res.first_error = "--depth must be 1..256 and --conns at least 1";
    ++res.conn_errors;
    return res;
  }
  if (!make_address(opt.host, static_cast<std::uint16_t>(opt.port), &run->addr, &run->addr_len)) {
    res.first_error = "--host '" + opt.host + "' is not a numeric IPv4/IPv6 address";
    ++res.conn_errors;
    return res;
  }
  run->request.method = opt.method;
  run->request.target = opt.path;
  run->request.body = opt.body;

  KernelConfig kc;
  kc.max_fds = static_cast<std::size_t>(opt.connections) + 64;
  kc.max_processes = static_cast<std::size_t>(opt.connections) + 8;
  kc.exit_when_idle = true;
  std::unique_ptr<Kernel> k = Kernel::create(kc);
  if (k == nullptr) {
    res.first_error = "the kernel could not be created (see the log line above)";
    ++res.conn_errors;
    return res;
  }
  HeapPool pool(16, static_cast<std::size_t>(opt.connections));
  auto conns = std::make_unique<Conn[]>(static_cast<std::size_t>(opt.connections));

  std::int64_t start = monotonic_ns();
  if (opt.requests > 0) {
    run->to_send = opt.requests;
    run->measure_from = 0;
    run->stop_at = INT64_MAX;
  } else {
    run->to_send = INT64_MAX;
    run->measure_from = start + static_cast<std::int64_t>(opt.warmup_s * 1e9);
    run->stop_at = run->measure_from + static_cast<std::int64_t>(opt.duration_s * 1e9);
  }
  for (int i = 0; i < opt.connections; ++i) {
    if (k->start(pool, connection, run.get(), &conns[static_cast<std::size_t>(i)]) == nullptr) {
      res.first_error = "could not start connection " + std::to_string(i) + " (process table or heap pool full)";
      ++res.conn_errors;
      break;
    }
  }
  k->run();

  if (opt.requests > 0) {
    res.seconds = static_cast<double>(run->last_response - run->first_send) / 1e9;
  } else {
    res.seconds = static_cast<double>(run->stop_at - run->measure_from) / 1e9;
  }
  res.requests_per_s = res.seconds > 0 ? static_cast<double>(res.responses) / res.seconds : 0;
  const metrics::LatencyHistogram& h = run->latency;
  res.p50_ns = h.percentile(50);
  res.p90_ns = h.percentile(90);
  res.p99_ns = h.percentile(99);
  res.p999_ns = h.percentile(99.9);
  res.max_ns = h.max();
  res.mean_ns = h.mean();
  return res;
}

std::string describe(const HttpLoadResult& r) {
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "%.0f req/s over %.2f s (%llu responses); latency p50 %.1f us, p90 %.1f us, p99 %.1f us, p99.9 %.1f "
                "us, max %.1f us; %d connections ok, %llu connection errors, %llu bad statuses, %llu bad bodies%s%s\n"
                "RESULT req_per_s=%.0f responses=%llu seconds=%.3f p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f "
                "max_us=%.1f mean_us=%.1f conns_ok=%d conn_errors=%llu bad_status=%llu bad_body=%llu",
                r.requests_per_s, r.seconds, static_cast<unsigned long long>(r.responses), r.p50_ns / 1e3,
                r.p90_ns / 1e3, r.p99_ns / 1e3, r.p999_ns / 1e3, r.max_ns / 1e3, r.connections_ok,
                static_cast<unsigned long long>(r.conn_errors), static_cast<unsigned long long>(r.bad_status),
                static_cast<unsigned long long>(r.bad_body), r.first_error.empty() ? "" : "; first error: ",
                r.first_error.c_str(), r.requests_per_s, static_cast<unsigned long long>(r.responses), r.seconds,
                r.p50_ns / 1e3, r.p90_ns / 1e3, r.p99_ns / 1e3, r.p999_ns / 1e3, r.max_ns / 1e3, r.mean_ns / 1e3,
                r.connections_ok, static_cast<unsigned long long>(r.conn_errors),
                static_cast<unsigned long long>(r.bad_status), static_cast<unsigned long long>(r.bad_body));
  return buf;
}

}  // namespace mnv::perf
