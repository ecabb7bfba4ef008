// perf/http_load_run.cc — the closed-loop HTTP load run (http_load_run.h).
#include "perf/http_load_run.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
  std::uint64_t next_body = 0;
  metrics::LatencyHistogram latency;
  HttpLoadResult result;
};

struct Conn {
  http::Client* client = nullptr;
};

void note_failure(HttpLoadResult* result, Conn* conn) {
  ++result->conn_errors;
  if (result->first_error.empty()) {
    char buf[400];
    if (conn->client != nullptr) {
      result->first_error = conn->client->explain(error(), buf, sizeof buf);
    } else {
      result->first_error = error().describe(buf, sizeof buf);
    }
  }
}

Finally failed(HttpLoadResult* result, Conn* conn) {
  note_failure(result, conn);
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

bool status_ok(const HttpLoadOptions& opt, int status) {
  if (opt.ok_statuses.empty()) return status == opt.expect_status;
  for (int s : opt.ok_statuses) {
    if (s == status) return true;
  }
  return false;
}

// Counts a response's status and body against the options.
void check(const HttpLoadOptions& opt, const http::Response& r, const char* body, HttpLoadResult* res) {
  if (r.status >= 0 && r.status < static_cast<int>(res->status_counts.size())) {
    ++res->status_counts[static_cast<std::size_t>(r.status)];
  }
  if (!status_ok(opt, r.status)) ++res->bad_status;
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
    check(opt, r, body, &run->result);
    if (c.closed()) break;  // the server closes after this response (Connection: close)
  }
  conn->client = nullptr;
  ++run->result.connections_ok;
}

// ---- open loop ----

struct OpenRun {
  const HttpLoadOptions* opt;
  int connections = 0;
  sockaddr_storage addr;
  socklen_t addr_len;
  std::uint64_t total = 0;    // requests scheduled
  double period_ns = 0;       // 1e9 / rate
  std::int64_t late_ns = 0;
  std::int64_t deadline_ns = 0;  // answers later than this are timeouts (0: none)
  int connected = 0;          // connections open (t0 is set when all are)
  int finished = 0;           // connections that ended, well or not
  std::int64_t t0 = 0;
  std::int64_t last_send = 0;
  std::uint64_t bids = 0;     // 200 answers seen (for the win share)
  metrics::LatencyHistogram latency;
  metrics::LatencyHistogram service;
  metrics::LatencyHistogram second;  // this second's latencies (the progress line)
  HttpLoadResult result;
  // The per-shard shares (open_scraper): the last scrape's counts, and the share text of the
  // growth between the last two scrapes.
  static constexpr int kMaxShards = 64;
  double shard_counts[kMaxShards] = {};
  std::string shares;
  std::vector<char> scrape_body;

  std::int64_t intended(std::uint64_t i) const {
    return t0 + static_cast<std::int64_t>(static_cast<double>(i) * period_ns);
  }
};

Finally open_failed(OpenRun* run, Conn* conn) {
  ++run->finished;
  note_failure(&run->result, conn);
  co_return;
}

// Fills `target` (capacity n) with the path of the first `key` URL ("\"nurl\":\"" or
// "\"burl\":\"") in `body` with ${AUCTION_PRICE} replaced by clearing x the first "price"; false
// when the body has no usable such URL.
bool notice_target(std::string_view body, std::string_view key, double clearing, char* target, std::size_t n) {
  std::size_t u = body.find(key);
  std::size_t p = body.find("\"price\":");
  if (u == std::string_view::npos || p == std::string_view::npos) return false;
  std::string_view url = body.substr(u + key.size());
  url = url.substr(0, url.find('"'));
  if (std::size_t scheme = url.find("://"); scheme != std::string_view::npos) {
    url = url.substr(scheme + 3);
    std::size_t slash = url.find('/');
    if (slash == std::string_view::npos) return false;
    url = url.substr(slash);
  }
  if (url.empty() || url[0] != '/') return false;
  double price = std::strtod(std::string(body.substr(p + 8, 24)).c_str(), nullptr);
  char price_text[32];
  int pl = std::snprintf(price_text, sizeof price_text, "%.4f", price * clearing);
  static constexpr std::string_view kMacro = "${AUCTION_PRICE}";
  std::size_t out = 0;
  for (std::size_t i = 0; i < url.size();) {
    std::string_view piece;
    if (url.substr(i, kMacro.size()) == kMacro) {
      piece = std::string_view(price_text, static_cast<std::size_t>(pl));
      i += kMacro.size();
    } else {
      piece = url.substr(i, 1);
      ++i;
    }
    if (out + piece.size() >= n) return false;
    std::memcpy(target + out, piece.data(), piece.size());
    out += piece.size();
  }
  target[out] = '\0';
  return true;
}

Thread open_connection(OpenRun* run, Conn* conn, int index) {
  co_await finally(open_failed(run, conn));
  const HttpLoadOptions& opt = *run->opt;
  char scratch[2048];
  http::Client c(client_options(opt, scratch));
  conn->client = &c;
  co_await c.connect(reinterpret_cast<const sockaddr*>(&run->addr), run->addr_len);
  if (++run->connected == run->connections) run->t0 = monotonic_ns() + 1'000'000;
  // Until every connection is open (or, if one never opens, its connect deadline has passed).
  const std::int64_t give_up = monotonic_ns() + static_cast<std::int64_t>(opt.timeout_s * 1e9);
  while (run->t0 == 0) {
    if (monotonic_ns() > give_up) run->t0 = monotonic_ns();
    co_await sleep_for(1'000'000);
  }
  constexpr std::uint32_t kCap = http::Client::kMaxOutstanding;
  std::int64_t intended[kCap];  // -1: a win notice
  std::int64_t actual[kCap];
  std::int64_t deadline[kCap];  // after which its answer is a timeout (0: none)
  const std::size_t ndeadlines = opt.deadlines_ms.size();
  std::uint64_t sent = 0, received = 0;
  std::uint64_t i = static_cast<std::uint64_t>(index);  // the next request of this connection
  const std::uint64_t step = static_cast<std::uint64_t>(run->connections);
  const std::size_t nbodies = opt.bodies.size();
  http::Request req;
  req.method = opt.method;
  req.target = opt.path;
  req.fields = opt.fields;
  req.body = opt.body;
  char win[512];
  const bool want_body = !opt.expect_body.empty() || opt.win_share > 0;
  char body[4096];
  std::span<char> body_span(body, want_body ? sizeof body : 0);
  HttpLoadResult& res = run->result;
  for (;;) {
    std::int64_t now = monotonic_ns();
    bool any = false;
    while (i < run->total && run->intended(i) <= now && c.outstanding() < kCap) {
      if (nbodies != 0) req.body = opt.bodies[i % nbodies];
      co_await c.send(req);
      std::int64_t due = run->intended(i);
      intended[sent % kCap] = due;
      actual[sent % kCap] = now;
      deadline[sent % kCap] = ndeadlines != 0 ? opt.deadlines_ms[i % ndeadlines] * std::int64_t{1'000'000} : run->deadline_ns;
      ++sent;
      ++res.sent;
      if (now - due > run->late_ns) ++res.late_sends;
      if (now - due > res.max_lag_ns) res.max_lag_ns = now - due;
      if (now > run->last_send) run->last_send = now;
      i += step;
      any = true;
    }
    if (any) co_await c.flush();
    std::int64_t next = i < run->total ? run->intended(i) : 0;
    if (c.outstanding() > 0) {
      http::Response r;
      // A full connection cannot send anyway: it waits for a response.
      if (co_await c.receive_until(c.outstanding() < kCap ? next : 0, &r, body_span)) {
        std::int64_t t = monotonic_ns();
        std::int64_t due = intended[received % kCap];
        std::int64_t at = actual[received % kCap];
        std::int64_t late_after = deadline[received % kCap];
        ++received;
        if (due < 0) {  // a win notice's answer
          if (r.status < 200 || r.status > 299) ++res.win_errors;
        } else {
          run->latency.record(static_cast<std::uint64_t>(t - due));
          run->second.record(static_cast<std::uint64_t>(t - due));
          run->service.record(static_cast<std::uint64_t>(t - at));
          ++res.responses;
          if (late_after > 0 && t - due > late_after) ++res.timeouts;
          if (r.status >= 0 && r.status < static_cast<int>(res.status_counts.size())) ++res.status_counts[static_cast<std::size_t>(r.status)];
          if (!status_ok(opt, r.status)) ++res.bad_status;
          const std::string_view expect = opt.expect_body;
          if (!expect.empty() && (r.body_size != expect.size() || std::string_view(body, r.body_copied) != expect)) {
            ++res.bad_body;
          }
          if (r.status == 200 && opt.win_share > 0 && !c.closed() && c.outstanding() < kCap) {
            std::uint64_t b = run->bids++;
            bool pick = static_cast<std::uint64_t>(static_cast<double>(b + 1) * opt.win_share) >
                        static_cast<std::uint64_t>(static_cast<double>(b) * opt.win_share);
            // The win notice, then the billing notice where the bid has one (the impression
            // rendered), each a GET on this connection whose answer is not timed.
            const std::string_view b_body(body, r.body_copied);
            bool any_notice = false;
            for (std::string_view key : {std::string_view("\"nurl\":\""), std::string_view("\"burl\":\"")}) {
              if (!pick || c.outstanding() >= kCap || !notice_target(b_body, key, opt.clearing, win, sizeof win)) continue;
              co_await c.send(http::Request{.method = "GET", .target = win, .fields = {}, .body = {}});
              intended[sent % kCap] = -1;
              actual[sent % kCap] = t;
              deadline[sent % kCap] = 0;
              ++sent;
              ++(key[1] == 'n' ? res.wins_sent : res.bills_sent);
              any_notice = true;
            }
            if (any_notice) co_await c.flush();
          }
        }
        if (c.closed()) break;
      }
    } else if (next != 0) {
      co_await sleep_until(next);
    } else {
      break;
    }
  }
  conn->client = nullptr;
  ++res.connections_ok;
  ++run->finished;
}

// Sums the samples of the metrics named in `metrics` (comma-separated) in a Prometheus text page
// per value of their shard label.
void sum_by_shard(std::string_view page, std::string_view metrics, double* counts, int n) {
  for (int i = 0; i < n; ++i) counts[i] = 0;
  auto wanted = [metrics](std::string_view line) {
    for (std::string_view rest = metrics; !rest.empty();) {
      std::size_t comma = rest.find(',');
      std::string_view m = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (line.size() > m.size() && line.substr(0, m.size()) == m && line[m.size()] == '{') return true;
    }
    return false;
  };
  while (!page.empty()) {
    std::size_t eol = page.find('\n');
    std::string_view line = page.substr(0, eol);
    page = eol == std::string_view::npos ? std::string_view() : page.substr(eol + 1);
    if (!wanted(line)) continue;
    std::size_t at = line.find("shard=\"");
    std::size_t sp = line.rfind(' ');
    if (at == std::string_view::npos || sp == std::string_view::npos) continue;
    int shard = std::atoi(std::string(line.substr(at + 7, 4)).c_str());
    if (shard >= 0 && shard < n) counts[shard] += std::strtod(std::string(line.substr(sp + 1)).c_str(), nullptr);
  }
}

Finally scraper_failed(OpenRun* run) {
  run->shares = "shares: no /metrics";
  co_return;
}

// Once a second until every connection has ended: GET /metrics from the admin listener and the
// shards' shares of the growth of shares_metric since the previous scrape.
Thread open_scraper(OpenRun* run) {
  co_await finally(scraper_failed(run));
  const HttpLoadOptions& opt = *run->opt;
  sockaddr_storage addr;
  socklen_t len;
  if (!make_address(opt.shares_host, static_cast<std::uint16_t>(opt.shares_port), &addr, &len)) {
    run->shares = "shares: bad host";
    co_return;
  }
  char scratch[2048];
  http::ClientOptions co;
  co.host = opt.host_header;
  co.connect_timeout_ns = 1'000'000'000;
  co.response_timeout_ns = 1'000'000'000;
  co.scratch = scratch;
  http::Client c(co);
  co_await c.connect(reinterpret_cast<const sockaddr*>(&addr), len);
  double before[OpenRun::kMaxShards] = {};
  bool first = true;
  while (run->finished < run->connections) {
    co_await c.send(http::Request{.method = "GET", .target = "/metrics", .fields = {}, .body = {}});
    http::Response r = co_await c.receive(run->scrape_body);
    if (r.status != 200 || c.closed()) {
      run->shares = "shares: /metrics answered " + std::to_string(r.status);
      co_return;
    }
    double now[OpenRun::kMaxShards];
    sum_by_shard(std::string_view(run->scrape_body.data(), r.body_copied), opt.shares_metric, now,
                 OpenRun::kMaxShards);
    double total = 0;
    for (int i = 0; i < OpenRun::kMaxShards; ++i) total += now[i] - before[i];
    if (!first && total > 0) {
      std::string text = "shares";
      char buf[32];
      for (int i = 0; i < OpenRun::kMaxShards; ++i) {
        if (now[i] - before[i] <= 0) continue;
        std::snprintf(buf, sizeof buf, " %d:%.0f%%", i, 100 * (now[i] - before[i]) / total);
        text += buf;
      }
      run->shares = text;
    }
    first = false;
    for (int i = 0; i < OpenRun::kMaxShards; ++i) before[i] = now[i];
    const std::int64_t wake = monotonic_ns() + 1'000'000'000;
    while (run->finished < run->connections && monotonic_ns() < wake) co_await sleep_for(20'000'000);
  }
}

// Once a second from t0 until every connection has ended: a tick (kept, and printed as the
// progress line when asked).
Thread open_progress(OpenRun* run) {
  const HttpLoadOptions& opt = *run->opt;
  while (run->t0 == 0) co_await sleep_for(1'000'000);
  std::int64_t next = run->t0 + 1'000'000'000;
  HttpLoadTick last;
  bool printed = false;
  for (;;) {
    bool done = run->finished == run->connections;
    std::int64_t now = monotonic_ns();
    if (now >= next || done) {
      const HttpLoadResult& res = run->result;
      HttpLoadTick t;
      t.t_s = static_cast<double>(now - run->t0) / 1e9;
      t.sent = res.sent;
      t.responses = res.responses;
      t.errors = res.errors();
      t.timeouts = res.timeouts;
      const metrics::LatencyHistogram& h = run->second;
      t.p50_ns = h.percentile(50);
      t.p90_ns = h.percentile(90);
      t.p99_ns = h.percentile(99);
      t.p999_ns = h.percentile(99.9);
      t.max_ns = h.max();
      t.shares = run->shares;
      run->second.reset();
      double secs = t.t_s - last.t_s;
      if (h.count() > 0 || t.sent > last.sent) run->result.ticks.push_back(t);
      if (opt.progress != nullptr && secs > 0.05) {
        std::fprintf(opt.progress,
                     "%s%s%5.1f s  sent %8.0f/s  answered %8.0f/s  p50 %8.3f ms  p99 %8.3f ms  timeouts %llu  "
                     "errors %llu%s%s%s",
                     opt.progress_tty ? "\r\033[K" : "", opt.label.c_str(), t.t_s,
                     static_cast<double>(t.sent - last.sent) / secs,
                     static_cast<double>(t.responses - last.responses) / secs, t.p50_ns / 1e6, t.p99_ns / 1e6,
                     static_cast<unsigned long long>(t.timeouts), static_cast<unsigned long long>(t.errors),
                     t.shares.empty() ? "" : "  ", t.shares.c_str(), opt.progress_tty ? "" : "\n");
        std::fflush(opt.progress);
        printed = true;
      }
      last = t;
      next += 1'000'000'000;
    }
    if (done) break;
    std::int64_t wake = monotonic_ns() + 20'000'000;
    co_await sleep_until(wake < next ? wake : next);
  }
  if (printed && opt.progress_tty) {
    std::fputc('\n', opt.progress);
    std::fflush(opt.progress);
  }
}

// Starts `fn(run, conn[i], extra...)` for every connection in a kernel and runs it until all end.
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
  run->connections = opt.connections > 0 ? opt.connections : auto_connections(opt.rate);
  res.connections_used = run->connections;
  HttpLoadOptions checked = opt;
  checked.connections = run->connections;
  if (!check_options(checked, &run->addr, &run->addr_len, &res)) return res;
  if (!(opt.rate > 0) || !(opt.duration_s > 0)) {
    res.first_error = "--rate and --duration_s must be above 0 for an open-loop run";
    ++res.conn_errors;
    res.valid = false;
    return res;
  }
  run->total = static_cast<std::uint64_t>(opt.rate * opt.duration_s);
  run->period_ns = 1e9 / opt.rate;
  run->late_ns = static_cast<std::int64_t>(opt.late_us * 1e3);
  run->deadline_ns = static_cast<std::int64_t>(opt.deadline_ms * 1e6);
  int started = 0;
  launch(run->connections, run.get(),
         [&started](Kernel& k, HeapPool& pool, OpenRun* r, Conn* c, int i) {
           if (k.start(pool, open_connection, r, c, i) == nullptr) {
             r->finished += r->connections - started;  // those never started never end
             return false;
           }
           ++started;
           return true;
         },
         [](Kernel& k, HeapPool& pool, OpenRun* r) {
           if (r->opt->shares_port > 0) {
             r->scrape_body.resize(1 << 20);
             if (k.start(pool, open_scraper, r) == nullptr) return false;
           }
           return k.start(pool, open_progress, r) != nullptr;
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
  res.latency = std::make_shared<metrics::LatencyHistogram>(run->latency);
  res.service = std::make_shared<metrics::LatencyHistogram>(run->service);
  return res;
}

int auto_connections(double rate) {
  double n = std::ceil(rate / 1000.0);
  return n < 4 ? 4 : n > 512 ? 512 : static_cast<int>(n);
}

HttpLoadResult run_closed_loop(const HttpLoadOptions& opt) {
  auto run = std::make_unique<Run>();
  run->opt = &opt;
  HttpLoadResult& res = run->result;
  if (!check_options(opt, &run->addr, &run->addr_len, &res)) return res;
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
  launch(opt.connections, run.get(),
         [](Kernel& k, HeapPool& pool, Run* r, Conn* c, int) { return k.start(pool, connection, r, c) != nullptr; },
         [](Kernel&, HeapPool&, Run*) { return true; }, res);
  if (opt.requests > 0) {
    res.seconds = static_cast<double>(run->last_response - run->first_send) / 1e9;
  } else {
    res.seconds = static_cast<double>(run->stop_at - run->measure_from) / 1e9;
  }
  res.requests_per_s = res.seconds > 0 ? static_cast<double>(res.responses) / res.seconds : 0;
  fill_latency(run->latency, &res);
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
