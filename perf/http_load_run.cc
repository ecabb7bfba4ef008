// perf/http_load_run.cc — the closed-loop HTTP load run (http_load_run.h).
#include "perf/http_load_run.h"

#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "mem/heap_pool.h"
#include "metrics/latency_histogram.h"
#include "net/http/client.h"
#include "net/io.h"
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

Finally failed(HttpLoadResult* result, Conn* conn) {
  ++result->conn_errors;
  if (result->first_error.empty()) {
    char buf[400];
    if (conn->client != nullptr) {
      result->first_error = conn->client->explain(error(), buf, sizeof buf);
    } else {
      result->first_error = error().describe(buf, sizeof buf);
    }
  }
  co_return;
}

http::ClientOptions client_options(const HttpLoadOptions& opt, std::span<char> scratch) {
  http::ClientOptions co;
  co.host = opt.host_header;
  co.connect_timeout_ns = static_cast<std::int64_t>(opt.timeout_s * 1e9);
  co.response_timeout_ns = co.connect_timeout_ns;
  co.scratch = scratch;
  return co;
}

// Counts a response's status and body against the options.
void check(const HttpLoadOptions& opt, const http::Response& r, const char* body, HttpLoadResult* res) {
  if (r.status != opt.expect_status) ++res->bad_status;
  const std::string_view expect = opt.expect_body;
  if (!expect.empty() && (r.body_size != expect.size() || std::string_view(body, r.body_copied) != expect)) {
    ++res->bad_body;
  }
}

Thread connection(Run* run, Conn* conn) {
  co_await finally(failed(&run->result, conn));
  const HttpLoadOptions& opt = *run->opt;
  char scratch[2048];
  http::Client c(client_options(opt, scratch));
  conn->client = &c;
  co_await c.connect(reinterpret_cast<const sockaddr*>(&run->addr), run->addr_len);
  std::int64_t sent_at[http::Client::kMaxOutstanding];
  std::uint64_t sent = 0, received = 0;
  char body[256];
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
    check(opt, r, body, &run->result);
    if (c.closed()) break;  // the server closes after this response (Connection: close)
  }
  conn->client = nullptr;
  ++run->result.connections_ok;
}

// ---- open loop ----

struct OpenRun {
  const HttpLoadOptions* opt;
  http::Request request;
  sockaddr_storage addr;
  socklen_t addr_len;
  std::uint64_t total = 0;    // requests scheduled
  double period_ns = 0;       // 1e9 / rate
  std::int64_t late_ns = 0;
  int connected = 0;          // connections open (t0 is set when all are)
  int ended = 0;              // connections that gave up before the schedule ended
  std::int64_t t0 = 0;
  std::int64_t last_send = 0;
  metrics::LatencyHistogram latency;
  metrics::LatencyHistogram service;
  HttpLoadResult result;

  std::int64_t intended(std::uint64_t i) const {
    return t0 + static_cast<std::int64_t>(static_cast<double>(i) * period_ns);
  }
};

Thread open_connection(OpenRun* run, Conn* conn, int index) {
  co_await finally(failed(&run->result, conn));
  const HttpLoadOptions& opt = *run->opt;
  char scratch[2048];
  http::Client c(client_options(opt, scratch));
  conn->client = &c;
  co_await c.connect(reinterpret_cast<const sockaddr*>(&run->addr), run->addr_len);
  if (++run->connected == opt.connections) run->t0 = monotonic_ns() + 1'000'000;
  // Until every connection is open (or, if one never opens, its connect deadline has passed).
  const std::int64_t give_up = monotonic_ns() + static_cast<std::int64_t>(opt.timeout_s * 1e9);
  while (run->t0 == 0) {
    if (monotonic_ns() > give_up) run->t0 = monotonic_ns();
    co_await sleep_for(1'000'000);
  }
  constexpr std::uint32_t kCap = http::Client::kMaxOutstanding;
  std::int64_t intended[kCap];
  std::int64_t actual[kCap];
  std::uint64_t sent = 0, received = 0;
  std::uint64_t i = static_cast<std::uint64_t>(index);  // the next request of this connection
  const std::uint64_t step = static_cast<std::uint64_t>(opt.connections);
  char body[256];
  for (;;) {
    std::int64_t now = monotonic_ns();
    bool any = false;
    while (i < run->total && run->intended(i) <= now && c.outstanding() < kCap) {
      co_await c.send(run->request);
      std::int64_t due = run->intended(i);
      intended[sent % kCap] = due;
      actual[sent % kCap] = now;
      ++sent;
      ++run->result.sent;
      if (now - due > run->late_ns) ++run->result.late_sends;
      if (now - due > run->result.max_lag_ns) run->result.max_lag_ns = now - due;
      if (now > run->last_send) run->last_send = now;
      i += step;
      any = true;
    }
    if (any) co_await c.flush();
    std::int64_t next = i < run->total ? run->intended(i) : 0;
    if (c.outstanding() > 0) {
      http::Response r;
      // A full connection cannot send anyway: it waits for a response.
      if (co_await c.receive_until(c.outstanding() < kCap ? next : 0, &r, body)) {
        std::int64_t t = monotonic_ns();
        run->latency.record(static_cast<std::uint64_t>(t - intended[received % kCap]));
        run->service.record(static_cast<std::uint64_t>(t - actual[received % kCap]));
        ++received;
        ++run->result.responses;
        check(opt, r, body, &run->result);
        if (c.closed()) break;
      }
    } else if (next != 0) {
      co_await sleep_until(next);
    } else {
      break;
    }
  }
  conn->client = nullptr;
  ++run->result.connections_ok;
}

// Starts `fn(run, conn[i], extra...)` for every connection in a kernel and runs it until all end.
template <typename RunT, typename F>
bool launch(const HttpLoadOptions& opt, RunT* run, F fn, HttpLoadResult& res) {
  KernelConfig kc;
  kc.max_fds = static_cast<std::size_t>(opt.connections) + 64;
  kc.max_processes = static_cast<std::size_t>(opt.connections) + 8;
  kc.exit_when_idle = true;
  std::unique_ptr<Kernel> k = Kernel::create(kc);
  if (k == nullptr) {
    res.first_error = "the kernel could not be created (see the log line above)";
    ++res.conn_errors;
    return false;
  }
  HeapPool pool(16, static_cast<std::size_t>(opt.connections));
  auto conns = std::make_unique<Conn[]>(static_cast<std::size_t>(opt.connections));
  for (int i = 0; i < opt.connections; ++i) {
    if (!fn(*k, pool, run, &conns[static_cast<std::size_t>(i)], i)) {
      res.first_error = "could not start connection " + std::to_string(i) + " (process table or heap pool full)";
      ++res.conn_errors;
      break;
    }
  }
  k->run();
  return true;
}

void fill_latency(const metrics::LatencyHistogram& h, HttpLoadResult* res) {
  res->p50_ns = h.percentile(50);
  res->p90_ns = h.percentile(90);
  res->p99_ns = h.percentile(99);
  res->p999_ns = h.percentile(99.9);
  res->max_ns = h.max();
  res->mean_ns = h.mean();
}

// Checks the options both loops share; false (with the error in *res) when they are bad.
bool check_options(const HttpLoadOptions& opt, sockaddr_storage* addr, socklen_t* len, HttpLoadResult* res) {
  if (opt.depth < 1 || opt.depth > static_cast<int>(http::Client::kMaxOutstanding) || opt.connections < 1) {
    res->first_error = "--depth must be 1..256 and --conns at least 1";
    ++res->conn_errors;
    return false;
  }
  if (!make_address(opt.host, static_cast<std::uint16_t>(opt.port), addr, len)) {
    res->first_error = "--host '" + opt.host + "' is not a numeric IPv4/IPv6 address";
    ++res->conn_errors;
    return false;
  }
  return true;
}

}  // namespace

HttpLoadResult run_open_loop(const HttpLoadOptions& opt) {
  auto run = std::make_unique<OpenRun>();
  run->opt = &opt;
  HttpLoadResult& res = run->result;
  res.target_rate = opt.rate;
  if (!check_options(opt, &run->addr, &run->addr_len, &res)) return res;
  if (!(opt.rate > 0) || !(opt.duration_s > 0)) {
    res.first_error = "--rate and --duration_s must be above 0 for an open-loop run";
    ++res.conn_errors;
    res.valid = false;
    return res;
  }
  run->request.method = opt.method;
  run->request.target = opt.path;
  run->request.body = opt.body;
  run->total = static_cast<std::uint64_t>(opt.rate * opt.duration_s);
  run->period_ns = 1e9 / opt.rate;
  run->late_ns = static_cast<std::int64_t>(opt.late_us * 1e3);
  launch(opt, run.get(),
         [](Kernel& k, HeapPool& pool, OpenRun* r, Conn* c, int i) {
           return k.start(pool, open_connection, r, c, i) != nullptr;
         },
         res);
  res.unsent = run->total - res.sent;
  res.seconds = run->t0 != 0 ? static_cast<double>(run->last_send - run->t0) / 1e9 : 0;
  res.achieved_rate = res.sent > 1 && run->last_send > run->t0
                          ? static_cast<double>(res.sent - 1) / (static_cast<double>(run->last_send - run->t0) / 1e9)
                          : 0;
  res.requests_per_s = res.achieved_rate;
  res.valid = res.unsent == 0 && res.achieved_rate >= opt.rate * (1 - 0.005) && res.achieved_rate <= opt.rate * 1.005;
  fill_latency(run->latency, &res);
  const metrics::LatencyHistogram& s = run->service;
  res.service_p50_ns = s.percentile(50);
  res.service_p90_ns = s.percentile(90);
  res.service_p99_ns = s.percentile(99);
  res.service_p999_ns = s.percentile(99.9);
  res.service_max_ns = s.max();
  return res;
}

HttpLoadResult run_closed_loop(const HttpLoadOptions& opt) {
  auto run = std::make_unique<Run>();
  run->opt = &opt;
  HttpLoadResult& res = run->result;
  if (!check_options(opt, &run->addr, &run->addr_len, &res)) return res;
  run->request.method = opt.method;
  run->request.target = opt.path;
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
  launch(opt, run.get(),
         [](Kernel& k, HeapPool& pool, Run* r, Conn* c, int) { return k.start(pool, connection, r, c) != nullptr; },
         res);
  if (opt.requests > 0) {
    res.seconds = static_cast<double>(run->last_response - run->first_send) / 1e9;
  } else {
    res.seconds = static_cast<double>(run->stop_at - run->measure_from) / 1e9;
  }
  res.requests_per_s = res.seconds > 0 ? static_cast<double>(res.responses) / res.seconds : 0;
  fill_latency(run->latency, &res);
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
    if (!r.valid) {
      out.insert(0, "INVALID RUN (the achieved rate missed the target by more than 0.5%, or requests were not sent): ");
    }
  }
  return out;
}

}  // namespace mnv::perf
