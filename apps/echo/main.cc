// apps/echo — the seed's echo service on the mnvkd runtime, one shard per chosen core.
//
//   bazel run //apps/echo -- --port=8080 --shards=2 --poller=epoll
//   bazel run //apps/echo -- --config=shard/sample_affinity.toml
//
// The first line on stdout is "listening on HOST:PORT" with the bound port (--port=0 picks a
// free one), so scripts and tests can find it. Every shard listens on that port with
// SO_REUSEPORT (--balance=reuseport, the default), or hands each accepted connection to the
// least-loaded shard through the mailboxes (--balance=handoff). SIGTERM/SIGINT stop it cleanly
// (exit 0) and it prints, per shard, how many connections it served. A bad flag or config file
// is reported with the key, value and line, and the exit status is 2, before any shard starts.
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "apps/echo/echo_service.h"
#include "net/service.h"
#include "runtime/kernel.h"
#include "shard/affinity_flags.h"
#include "shard/shared_memory.h"
#include "shard/shard.h"
#include "shard/topology.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on (numeric IPv4 or IPv6)");
ABSL_FLAG(int, port, 0, "port to listen on; 0 picks a free one");
ABSL_FLAG(int, heap_pages, 0, "page budget of each connection's micro-heap; 0: from --config (default 8)");
ABSL_FLAG(int, pool_size, 0, "connections each shard serves at once; 0: from --config (default 8192)");
ABSL_FLAG(int, grace_ms, -1, "on SIGTERM, time in-flight connections get to finish; -1: from --config");
ABSL_FLAG(std::string, balance, "reuseport", "reuseport (kernel hash) or handoff (least-loaded shard)");
ABSL_FLAG(std::string, io, "recv",
          "with --poller=io_uring, how sockets do I/O: multishot (one multishot receive per "
          "connection into the shard's buffers, sends as SQEs), recv (one receive SQE per message "
          "into the connection's ring, sends as SQEs) or readiness (readv/writev on readiness); "
          "with --isolation other than off, always readiness");
ABSL_FLAG(bool, fault_injection, false,
          "chaos testing: a line !segv, !fpe or !oom makes that connection's handler fault, !hang makes it spin "
          "forever (until --max_run_ms traps it; with that off, shards as processes are restarted by the "
          "watchdog)");
ABSL_FLAG(std::int64_t, max_run_ms, 1'000,
          "CPU time a connection's handler may run without yielding before it is trapped (SIGXCPU) and its "
          "connection closed; 0: no limit");
ABSL_FLAG(std::int64_t, restart_stuck_ms, 10'000,
          "shards as processes: a shard whose loop has not turned for this long (not asleep) is killed and "
          "restarted; 0: off");

namespace {

constexpr std::uint32_t kHandoff = 1;  // post kind: an accepted fd for the receiving shard

struct HandoffMessage {  // (the fd goes with it: Shard::post_fd)
  socklen_t len;
  unsigned char peer[sizeof(sockaddr_in6)];
};
static_assert(sizeof(HandoffMessage) <= mnv::kShardPayload);

struct Echo {
  mnv::ServerConfig config;
  bool handoff = false;
  // servers[k] lives on shard k (with shard processes, only in shard k's process: each shard
  // reports its own counts from fini_shard).
  std::vector<std::unique_ptr<mnv::Server>> servers;
  // What every shard reads of the others, shared since shards may be processes: the port shard
  // 0 bound, and each server's counters (handoff balances on their active connections).
  mnv::SharedObject<std::atomic<std::uint16_t>> port{std::uint16_t{0}};
  mnv::SharedRegion shared_counters;
  mnv::ServerCounters* counters;  // [shard]
  explicit Echo(std::size_t shards)
      : servers(shards),
        shared_counters(sizeof(mnv::ServerCounters) * shards),
        counters(shared_counters.make_array<mnv::ServerCounters>(shards)) {}
};

Echo* g_echo = nullptr;

// Handoff balancing: serve here unless another shard has fewer connections in progress.
bool route(mnv::Server& server, int fd, const sockaddr_storage& peer, socklen_t len, void* ctx) {
  auto here = reinterpret_cast<std::size_t>(ctx);
  std::size_t best = here;
  long least = server.active();
  for (std::size_t k = 0; k < g_echo->servers.size(); ++k) {
    long load = g_echo->counters[k].active.load(std::memory_order_relaxed);
    if (load < least) {
      least = load;
      best = k;
    }
  }
  if (best == here) return false;  // the caller serves it
  HandoffMessage m{len, {}};
  std::memcpy(m.peer, &peer, len < sizeof m.peer ? len : sizeof m.peer);
  return mnv::Shard::current()->post_fd(best, kHandoff, fd, &m, sizeof m);  // not sent: serve it here
}

void on_handoff(const mnv::ShardMessage& msg, void* ctx) {
  HandoffMessage m;
  std::memcpy(&m, msg.payload, sizeof m);
  sockaddr_storage peer{};
  std::memcpy(&peer, m.peer, m.len < sizeof m.peer ? m.len : sizeof m.peer);
  g_echo->servers[reinterpret_cast<std::size_t>(ctx)]->start_connection(mnv::Shard::posted_fd(msg), peer, m.len);
}

bool init_shard(mnv::Shard& shard, std::string* error) {
  Echo& echo = *g_echo;
  mnv::ServerConfig c = echo.config;
  c.reuse_port = true;
  c.counters = &echo.counters[shard.index()];  // (a restarted shard's server goes on counting)
  // The port shard 0 bound (port 0 picks one), for the others and for a restarted shard 0.
  if (std::uint16_t bound = echo.port->load(); bound != 0) c.port = bound;
  void* ctx = reinterpret_cast<void*>(shard.index());
  if (echo.handoff) {
    c.on_accept = route;
    c.on_accept_ctx = ctx;
    shard.on_post(kHandoff, on_handoff, ctx);
  }
  auto server = mnv::Server::listen(shard.kernel(), c, error);
  if (server == nullptr) return false;
  if (shard.index() == 0) echo.port->store(server->port());
  echo.servers[shard.index()] = std::move(server);
  return true;
}

void fini_shard(mnv::Shard& shard) {
  const auto& server = g_echo->servers[shard.index()];
  if (server == nullptr) return;
  std::fprintf(stderr, "echo: shard %zu served %lu connections (%lu died of a trap or an unhandled error)\n",
               shard.index(), static_cast<unsigned long>(server->accepted()),
               static_cast<unsigned long>(server->deaths()));
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("the seed's echo service: each line is answered with \"Line N: <line>\"");
  absl::ParseCommandLine(argc, argv);

  // Serve as many connections as the hard limit on open files allows.
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }

  std::string error;
  auto topology = mnv::Topology::discover(&error);
  if (topology == nullptr) {
    std::fprintf(stderr, "echo: %s\n", error.c_str());
    return 2;
  }
  mnv::AffinityOverrides app;
  if (absl::GetFlag(FLAGS_heap_pages) != 0) app.heap_pages = absl::GetFlag(FLAGS_heap_pages);
  if (absl::GetFlag(FLAGS_pool_size) != 0) app.pool_size = absl::GetFlag(FLAGS_pool_size);
  if (absl::GetFlag(FLAGS_grace_ms) >= 0) app.grace_ms = absl::GetFlag(FLAGS_grace_ms);
  mnv::AffinityConfig affinity;
  if (!mnv::load_affinity_from_flags(*topology, app, &affinity, &error)) {
    std::fprintf(stderr, "echo: %s\n", error.c_str());
    return 2;
  }
  int port = absl::GetFlag(FLAGS_port);
  std::string balance = absl::GetFlag(FLAGS_balance);
  if (port < 0 || port > 65535) {
    std::fprintf(stderr, "echo: --port=%d: must be 0..65535\n", port);
    return 2;
  }
  if (balance != "reuseport" && balance != "handoff") {
    std::fprintf(stderr, "echo: --balance=%s: must be reuseport or handoff\n", balance.c_str());
    return 2;
  }

  std::string io = absl::GetFlag(FLAGS_io);
  if (io != "multishot" && io != "recv" && io != "readiness") {
    std::fprintf(stderr, "echo: --io=%s: must be multishot, recv or readiness\n", io.c_str());
    return 2;
  }
  mnv::echo::g_fault_injection = absl::GetFlag(FLAGS_fault_injection);
  Echo echo(static_cast<std::size_t>(affinity.shards));
  g_echo = &echo;
  echo.handoff = balance == "handoff";
  echo.config.host = absl::GetFlag(FLAGS_host);
  echo.config.port = static_cast<std::uint16_t>(port);
  echo.config.handler = mnv::echo::serve;
  echo.config.heap_pages = affinity.heap_pages;
  echo.config.pool_size = affinity.pool_size;

  mnv::Kernel::install_signal_handlers();
  mnv::ShardSetOptions options;
  options.affinity = affinity;
  options.init = init_shard;
  options.fini = fini_shard;
  options.restart_stuck_ms = absl::GetFlag(FLAGS_restart_stuck_ms);
  if (options.restart_stuck_ms < 0) {
    std::fprintf(stderr, "echo: --restart_stuck_ms=%lld: must be 0 (off) or more\n", static_cast<long long>(options.restart_stuck_ms));
    return 2;
  }
  options.max_run_ms = absl::GetFlag(FLAGS_max_run_ms);
  if (options.max_run_ms < 0) {
    std::fprintf(stderr, "echo: --max_run_ms=%lld: must be 0 (off) or more\n", static_cast<long long>(options.max_run_ms));
    return 2;
  }
  options.completion_io = io != "readiness";
  options.recv_multishot = io == "multishot";
  auto shards = mnv::ShardSet::start(*topology, options, &error);
  if (shards == nullptr) {
    std::fprintf(stderr, "echo: %s\n", error.c_str());
    return 1;
  }
  std::printf("listening on %s:%u\n", echo.config.host.c_str(), echo.port->load());
  std::fflush(stdout);
  std::string cpus;
  for (int c : affinity.cpus) cpus += (cpus.empty() ? "" : ",") + std::to_string(c);
  std::fprintf(stderr,
               "echo: %d shard(s) (%s) on CPU %s, poller %s (io %s), isolation %s, balance %s, %zu heap pages per "
               "connection%s\n",
               affinity.shards, shards->processes() ? "processes" : "threads", cpus.c_str(),
               mnv::poller_name(affinity.poller), io.c_str(),
               mnv::isolation_name(affinity.isolation), balance.c_str(), affinity.heap_pages,
               mnv::echo::g_fault_injection ? ", fault injection on" : "");
  return shards->wait();
}
