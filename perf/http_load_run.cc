// perf/http_load_run.cc — the closed-loop HTTP load run, auto_connections and describe()
// (http_load_run.h); the open loop is http_load_open.cc.
#include "perf/http_load_run.h"

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "perf/http_load_common.h"
#include "runtime/clock.h"

namespace mnv::perf {
namespace {

using detail::Conn;

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
  std::uint64_t next_body = 0;
  metrics::LatencyHistogram latency;
  HttpLoadResult result;
};

Thread connection(Run* run, Conn* conn) {
  co_await finally(detail::failed(&run->result, conn));
  const HttpLoadOptions& opt = *run->opt;
  char scratch[2048];
  http::Client c(detail::client_options(opt, scratch));
  conn->client = &c;
  co_await c.connect(reinterpret_cast<const sockaddr*>(&run->addr), run->addr_len);
  std::int64_t sent_at[http::Client::kMaxOutstanding];
  std::uint64_t sent = 0, received = 0;
  char body[256];
  http::Request req = run->request;
  const std::size_t nbodies = opt.bodies.size();
  for (;;) {
    std::int64_t now = monotonic_ns();
    while (c.outstanding() < static_cast<std::uint32_t>(opt.depth) && now < run->stop_at && run->to_send > 0) {
      --run->to_send;
      if (nbodies != 0) req.body = opt.bodies[run->next_body++ % nbodies];
      co_await c.send(req);
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
      if (opt.deadline_ms > 0 && static_cast<double>(t - t0) > opt.deadline_ms * 1e6) ++run->result.timeouts;
    }
    detail::check(opt, r, body, &run->result);
    if (c.closed()) break;  // the server closes after this response (Connection: close)
  }
  conn->client = nullptr;
  ++run->result.connections_ok;
}

}  // namespace

int auto_connections(double rate) {
  double n = std::ceil(rate / 1000.0);
  return n < 4 ? 4 : n > 512 ? 512 : static_cast<int>(n);
}

HttpLoadResult run_closed_loop(const HttpLoadOptions& opt) {
  auto run = std::make_unique<Run>();
  run->opt = &opt;
  HttpLoadResult& res = run->result;
  if (!detail::check_options(opt, &run->addr, &run->addr_len, &res)) return res;
  run->request.method = opt.method;
  run->request.target = opt.path;
  run->request.fields = opt.fields;
  run->request.body = opt.body;
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
  detail::launch(opt.connections, run.get(),
         [](Kernel& k, HeapPool& pool, Run* r, Conn* c, int) { return k.start(pool, connection, r, c) != nullptr; },
         [](Kernel&, HeapPool&, Run*) { return true; }, res);
  if (opt.requests > 0) {
    res.seconds = static_cast<double>(run->last_response - run->first_send) / 1e9;
  } else {
    res.seconds = static_cast<double>(run->stop_at - run->measure_from) / 1e9;
  }
  res.requests_per_s = res.seconds > 0 ? static_cast<double>(res.responses) / res.seconds : 0;
  detail::fill_latency(run->latency, &res);
  res.latency = std::make_shared<metrics::LatencyHistogram>(run->latency);
  res.connections_used = opt.connections;
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
  std::string out = buf;
  if (r.target_rate > 0) {
    std::snprintf(buf, sizeof buf,
                  " target_rate=%.0f achieved_rate=%.1f sent=%llu unsent=%llu late_sends=%llu max_lag_us=%.1f "
                  "valid=%d svc_p50_us=%.1f "
                  "svc_p90_us=%.1f svc_p99_us=%.1f svc_p999_us=%.1f svc_max_us=%.1f",
                  r.target_rate, r.achieved_rate, static_cast<unsigned long long>(r.sent),
                  static_cast<unsigned long long>(r.unsent), static_cast<unsigned long long>(r.late_sends),
                  r.max_lag_ns / 1e3, r.valid ? 1 : 0, r.service_p50_ns / 1e3, r.service_p90_ns / 1e3,
                  r.service_p99_ns / 1e3, r.service_p999_ns / 1e3, r.service_max_ns / 1e3);
    out += buf;
    std::snprintf(buf, sizeof buf, " wins_sent=%llu bills_sent=%llu win_errors=%llu",
                  static_cast<unsigned long long>(r.wins_sent), static_cast<unsigned long long>(r.bills_sent),
                  static_cast<unsigned long long>(r.win_errors));
    out += buf;
  }
  std::snprintf(buf, sizeof buf, " conns=%d timeouts=%llu", r.connections_used,
                static_cast<unsigned long long>(r.timeouts));
  out += buf;
  for (std::size_t s = 0; s < r.status_counts.size(); ++s) {
    if (r.status_counts[s] != 0) out += " s" + std::to_string(s) + "=" + std::to_string(r.status_counts[s]);
  }
  if (r.target_rate > 0) {
    if (!r.valid) {
      out.insert(0, "INVALID RUN (the achieved rate missed the target by more than 0.5%, or requests were not sent): ");
    }
  }
  return out;
}

}  // namespace mnv::perf
