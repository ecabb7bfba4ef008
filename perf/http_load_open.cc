// perf/http_load_open.cc — the open-loop HTTP load run (http_load_run.h): the schedule's
// connections, the progress ticks, and the per-shard shares scraped from /metrics.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "net/io.h"
#include "net/service.h"
#include "perf/http_load_common.h"
#include "perf/http_load_run.h"
#include "runtime/clock.h"

namespace mnv::perf {
namespace {

using detail::Conn;

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
  detail::note_failure(&run->result, conn);
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
  http::Client c(detail::client_options(opt, scratch));
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
          detail::check(opt, r, body, &res);
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
  if (!detail::check_options(checked, &run->addr, &run->addr_len, &res)) return res;
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
  detail::launch(run->connections, run.get(),
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
  detail::fill_latency(run->latency, &res);
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

}  // namespace mnv::perf
