// perf/redis_bench.cc — Redis round trips from one shard: one redis::Connection in one
// micro-thread of one kernel (io_uring by default), the same load redis-benchmark makes with one
// connection (-c 1): N commands, PIPELINE at a time (send them all, then receive them all).
//
//   redis_bench --port=6379 --requests=200000 --pipeline=1 --command=ping
//
// Prints one CSV line like redis-benchmark --csv: "name","rps","avg_latency_ms","min_latency_ms",
// "p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms". A command's latency is
// from its batch's first send() to its own reply (redis-benchmark's, too). WARMUP requests
// are made first and not counted. Latencies are kept in a vector sized up front.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "mem/heap_pool.h"
#include "redis/connection.h"
#include "runtime/clock.h"
#include "runtime/kernel.h"

ABSL_FLAG(int, port, 6379, "redis-server's port on 127.0.0.1");
ABSL_FLAG(int, requests, 200000, "commands measured");
ABSL_FLAG(int, warmup, 10000, "commands made first, not measured");
ABSL_FLAG(int, pipeline, 1, "commands sent before their replies are read");
ABSL_FLAG(std::string, command, "ping", "ping (PING_MBULK), incr (INCR counter), get (GET key), set (SET key 3-byte value)");
ABSL_FLAG(std::string, poller, "io_uring", "io_uring, epoll or poll");

namespace {

struct Run {
  sockaddr_in addr{};
  int requests = 0, warmup = 0, pipeline = 1;
  std::string command;
  std::vector<std::int64_t> lat;  // ns per command
  std::int64_t elapsed_ns = 0;
  int errors = 0;
  char why[256] = {};
};

mnv::Task<int> batch(mnv::redis::Connection& c, Run* r, int n, bool record) {
  static constexpr std::string_view kPing[] = {"PING"};
  static constexpr std::string_view kIncr[] = {"INCR", "counter:__rand_int__"};
  static constexpr std::string_view kGet[] = {"GET", "key:__rand_int__"};
  static constexpr std::string_view kSet[] = {"SET", "key:__rand_int__", "xxx"};
  std::span<const std::string_view> args = r->command == "incr" ? std::span<const std::string_view>(kIncr)
                                           : r->command == "get"  ? std::span<const std::string_view>(kGet)
                                           : r->command == "set"  ? std::span<const std::string_view>(kSet)
                                                                  : std::span<const std::string_view>(kPing);
  std::int64_t t0 = mnv::monotonic_ns();
  for (int i = 0; i < n; ++i) {
    if (int e = co_await c.send(args); e != 0) co_return e;
  }
  mnv::redis::Reply reply;
  for (int i = 0; i < n; ++i) {
    if (int e = co_await c.receive(&reply); e != 0) co_return e;
    if (reply.is_error()) ++r->errors;
    if (record) r->lat.push_back(mnv::monotonic_ns() - t0);
  }
  co_return 0;
}

mnv::Thread client(Run* r) {
  mnv::redis::ConnectionOptions opt;
  opt.call_timeout_ns = 5'000'000'000;
  mnv::redis::Connection c(opt);
  c.set_address(reinterpret_cast<const sockaddr*>(&r->addr), sizeof r->addr);
  for (int done = 0; done < r->warmup; done += r->pipeline) {
    if (co_await batch(c, r, r->pipeline, false) != 0) {
      std::snprintf(r->why, sizeof r->why, "%s", c.why());
      co_return;
    }
  }
  std::int64_t t0 = mnv::monotonic_ns();
  for (int done = 0; done < r->requests; done += r->pipeline) {
    if (co_await batch(c, r, r->pipeline, true) != 0) {
      std::snprintf(r->why, sizeof r->why, "%s", c.why());
      co_return;
    }
  }
  r->elapsed_ns = mnv::monotonic_ns() - t0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  Run r;
  r.addr.sin_family = AF_INET;
  r.addr.sin_port = htons(static_cast<std::uint16_t>(absl::GetFlag(FLAGS_port)));
  r.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  r.pipeline = std::max(1, absl::GetFlag(FLAGS_pipeline));
  r.requests = absl::GetFlag(FLAGS_requests) / r.pipeline * r.pipeline;
  r.warmup = absl::GetFlag(FLAGS_warmup);
  r.command = absl::GetFlag(FLAGS_command);
  r.lat.reserve(static_cast<std::size_t>(r.requests));
  mnv::KernelConfig kc;
  std::string poller = absl::GetFlag(FLAGS_poller);
  kc.poller = poller == "epoll" ? mnv::PollerKind::kEpoll : poller == "poll" ? mnv::PollerKind::kPoll
                                                                             : mnv::PollerKind::kIoUring;
  kc.max_fds = 64;
  kc.max_processes = 4;
  kc.exit_when_idle = true;
  auto k = mnv::Kernel::create(kc);
  if (k == nullptr) {
    std::fprintf(stderr, "redis_bench: no kernel\n");
    return 1;
  }
  mnv::HeapPool pool(32, 1);
  k->start(pool, client, &r);
  k->run();
  if (r.why[0] != '\0' || r.lat.empty()) {
    std::fprintf(stderr, "redis_bench: %s\n", r.why[0] ? r.why : "no command was measured");
    return 1;
  }
  std::sort(r.lat.begin(), r.lat.end());
  auto pct = [&](double p) {
    std::size_t i = static_cast<std::size_t>(p * static_cast<double>(r.lat.size() - 1));
    return static_cast<double>(r.lat[i]) / 1e6;
  };
  double sum = 0;
  for (std::int64_t v : r.lat) sum += static_cast<double>(v);
  double rps = static_cast<double>(r.lat.size()) * 1e9 / static_cast<double>(r.elapsed_ns);
  std::printf("\"%s\",\"%.2f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\"\n", r.command.c_str(), rps,
              sum / static_cast<double>(r.lat.size()) / 1e6, pct(0), pct(0.5), pct(0.95), pct(0.99), pct(1.0));
  if (r.errors > 0) std::fprintf(stderr, "redis_bench: %d error replies\n", r.errors);
  return 0;
}
