// shard/server.cc — the server skeleton (shard/server.h): config, shards, balancing, signals,
// exit codes.
#include "shard/server.h"

#include <poll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "runtime/wake_fd.h"
#include "net/http/http_metrics.h"
#include "net/server_metrics.h"
#include "runtime/kernel_metrics.h"
#include "shard/admin_listener.h"
#include "shard/affinity_config.h"
#include "shard/metrics_page.h"
#include "shard/shard_metrics.h"
#include "shard/shared_memory.h"
#include "shard/topology.h"

namespace mnv {

namespace {

constexpr std::uint32_t kHandoff = 1;  // post kind: an accepted fd for the receiving shard
constexpr std::int64_t kMaxRunMs = 3'600'000;

struct HandoffMessage {  // (the fd goes with it: Shard::post_fd)
  socklen_t len;
  unsigned char peer[sizeof(sockaddr_in6)];
};
static_assert(sizeof(HandoffMessage) <= kShardPayload);

// The skeleton's own knobs beyond the shard ones (shard/affinity_config.h).
void add_serving_knobs(Config* c) {
  c->add_choice("", "io", "recv", {"multishot", "recv", "readiness"},
                "with poller io_uring, how sockets do I/O: multishot (one multishot receive per connection into the "
                "shard's buffers), recv (one receive per message into the connection's ring) or readiness "
                "(readv/writev on readiness); with isolation other than off, always readiness");
  c->add_choice("", "balance", "reuseport", {"reuseport", "handoff"},
                "how connections spread over shards: reuseport (the kernel's hash) or handoff (each accepted "
                "connection goes to the shard with the fewest in progress)");
  c->add_int("", "max_run_ms", 1'000, 0, kMaxRunMs,
             "CPU time a connection's handler may run without yielding before it is trapped and its connection "
             "closed; 0: no limit",
             "0 (off) or more, up to 3600000");
  c->add_int("", "restart_stuck_ms", 10'000, 0, kMaxRunMs,
             "shards as processes: a shard whose loop has not turned for this long (not asleep) is killed and "
             "restarted; 0: never",
             "0 (never) or more, up to 3600000");
  c->add_text("service", "host", "127.0.0.1", "a numeric IPv4 or IPv6 address",
              [](std::string_view host, std::string* why) {
                sockaddr_storage addr;
                socklen_t len;
                if (make_address(std::string(host), 0, &addr, &len)) return true;
                *why = "not a numeric IPv4 or IPv6 address";
                return false;
              },
              "address to listen on (numeric IPv4 or IPv6)");
  c->add_int("service", "port", 0, 0, 65535, "port to listen on; 0 picks a free one");
  c->add_bool("", "metrics", true,
              "count the runtime's own metrics (loop, poller, bytes, traps, heaps, connections, mailboxes, and HTTP "
              "requests where the app serves HTTP): a few relaxed stores per request; off: only the app's own");
  c->add_int("service", "admin_port", -1, -1, 65535,
             "port of the admin listener (GET /metrics, Prometheus text) on admin_host, served on a thread beside "
             "the shards; -1: off (the default: no port the operator did not ask for); 0: a free one (printed)",
             "-1 (off), 0 (a free port) or a port up to 65535");
  c->add_text("service", "admin_host", "127.0.0.1", "a numeric IPv4 or IPv6 address",
              [](std::string_view host, std::string* why) {
                sockaddr_storage addr;
                socklen_t len;
                if (make_address(std::string(host), 0, &addr, &len)) return true;
                *why = "not a numeric IPv4 or IPv6 address";
                return false;
              },
              "address of the admin listener; loopback by default: the page has no authentication and tells "
              "anyone who can reach it the server's traffic, so expose it on purpose");
  c->add_int("service", "idle_timeout_ms", 60'000, 0, kMaxRunMs,
             "a connection that sends nothing (or too little to finish the read in hand) for this long is closed; "
             "0: never",
             "0 (never) or more, up to 3600000");
}

// What every shard reads of the others, shared since shards may be processes: the port shard 0
// bound, and each server's counters (handoff balances on their active connections).
struct Shared {
  const Service& service;
  ServerConfig config;
  bool handoff = false;
  // servers[k] lives on shard k (with shard processes, only in shard k's process).
  std::vector<std::unique_ptr<Server>> servers;
  SharedObject<std::atomic<std::uint16_t>> port{std::uint16_t{0}};
  SharedRegion counters_region;
  ServerCounters* counters;  // [shard]
  Shared(const Service& s, std::size_t shards)
      : service(s),
        servers(shards),
        counters_region(sizeof(ServerCounters) * shards),
        counters(counters_region.make_array<ServerCounters>(shards)) {}
};

Shared* g_shared = nullptr;  // (the accept hook and the post handler take a shard index as ctx)

// Handoff balancing: serve here unless another shard has fewer connections in progress.
bool route(Server& server, int fd, const sockaddr_storage& peer, socklen_t len, void* ctx) {
  auto here = reinterpret_cast<std::size_t>(ctx);
  std::size_t best = here;
  long least = server.active();
  for (std::size_t k = 0; k < g_shared->servers.size(); ++k) {
    long load = g_shared->counters[k].active.load(std::memory_order_relaxed);
    if (load < least) {
      least = load;
      best = k;
    }
  }
  if (best == here) return false;  // the caller serves it
  HandoffMessage m{len, {}};
  std::memcpy(m.peer, &peer, len < sizeof m.peer ? len : sizeof m.peer);
  return Shard::current()->post_fd(best, kHandoff, fd, &m, sizeof m);  // not sent: serve it here
}

void on_handoff(const ShardMessage& msg, void* ctx) {
  HandoffMessage m;
  std::memcpy(&m, msg.payload, sizeof m);
  sockaddr_storage peer{};
  std::memcpy(&peer, m.peer, m.len < sizeof m.peer ? m.len : sizeof m.peer);
  g_shared->servers[reinterpret_cast<std::size_t>(ctx)]->start_connection(Shard::posted_fd(msg), peer, m.len);
}

bool init_shard(Shard& shard, std::string* error) {
  Shared& s = *g_shared;
  ServerConfig c = s.config;
  c.reuse_port = true;
  c.counters = &s.counters[shard.index()];  // (a restarted shard's server goes on counting)
  // The port shard 0 bound (port 0 picks one), for the others and for a restarted shard 0.
  if (std::uint16_t bound = s.port->load(); bound != 0) c.port = bound;
  void* ctx = reinterpret_cast<void*>(shard.index());
  if (s.handoff) {
    c.on_accept = route;
    c.on_accept_ctx = ctx;
    shard.on_post(kHandoff, on_handoff, ctx);
  }
  auto server = Server::listen(shard.kernel(), c, error);
  if (server == nullptr) return false;
  if (shard.index() == 0) s.port->store(server->port());
  Server& ref = *server;
  s.servers[shard.index()] = std::move(server);
  return !s.service.init_shard || s.service.init_shard(shard, ref, error);
}

// SIGTERM: no new connections; idle ones close at once, busy ones after the request in hand.
void drain_shard(Shard& shard) {
  if (const auto& server = g_shared->servers[shard.index()]) server->drain();
}

void fini_shard(Shard& shard) {
  const auto& server = g_shared->servers[shard.index()];
  if (server == nullptr) return;
  if (g_shared->service.fini_shard) g_shared->service.fini_shard(shard, *server);
  std::fprintf(stderr, "%s: shard %zu served %lu connections (%lu died of a trap or an unhandled error)\n",
               g_shared->service.name, shard.index(), static_cast<unsigned long>(server->accepted()),
               static_cast<unsigned long>(server->deaths()));
}

// Reads SIGTERM, SIGINT and SIGHUP (blocked in every thread) until stop() — see server.h.
class SignalThread {
 public:
  SignalThread(const Service& service, ShardSet& shards, std::int64_t grace_ms, int signal_fd)
      : service_(service), shards_(shards), grace_ms_(grace_ms), signal_fd_(signal_fd) {
    done_fd_ = open_wake_fd();
    thread_ = std::thread([this] { run(); });
  }
  ~SignalThread() {
    signal_wake_fd(done_fd_);
    thread_.join();
    ::close(done_fd_);
  }

 private:
  void run() {
    bool stopping = false;
    std::int64_t deadline_ns = 0;  // the stop's hard end
    // Per shard while stopping: its loop turns when last seen, and when it last made progress
    // (turned, or was idle).
    std::vector<std::uint64_t> turns(shards_.size());
    std::vector<std::int64_t> progress_ns(shards_.size());
    for (;;) {
      pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {done_fd_, POLLIN, 0}};
      int r = ::poll(fds, 2, stopping ? static_cast<int>(kWatchMs) : -1);
      if (r < 0 && errno == EINTR) continue;
      if (fds[1].revents & POLLIN) return;
      if (stopping) {
        std::int64_t now = monotonic_ns();
        bool stuck = false;
        for (std::size_t i = 0; i < shards_.size(); ++i) {
          std::uint64_t t = shards_.loop_turns(i);
          if (t != turns[i] || shards_.loop_idle(i)) {
            turns[i] = t;
            progress_ns[i] = now;
          }
          stuck |= now - progress_ns[i] >= kStuckMs * 1'000'000;
        }
        if (now >= deadline_ns && stuck) {
          std::fprintf(stderr,
                       "%s: a shard is still stuck %lld ms after the stop (a handler that never yields?): exiting\n",
                       service_.name, static_cast<long long>(hard_stop_ms(grace_ms_)));
          std::fflush(nullptr);
          ::_exit(1);
        }
      }
      if (!(fds[0].revents & POLLIN)) continue;
      signalfd_siginfo info{};
      if (::read(signal_fd_, &info, sizeof info) != sizeof info) continue;
      int sig = static_cast<int>(info.ssi_signo);
      if (sig == SIGHUP) {
        std::fprintf(stderr, "%s: SIGHUP: reload\n", service_.name);
        if (service_.reload) service_.reload();
        continue;
      }
      if (stopping) {
        std::fprintf(stderr, "%s: SIG%s again: exiting now\n", service_.name, sigabbrev_np(sig));
        std::fflush(nullptr);
        ::_exit(1);
      }
      std::fprintf(stderr,
                   "%s: SIG%s: stopping: connections in flight get up to %lld ms, and the process exits by %lld ms "
                   "(a second signal exits at once)\n",
                   service_.name, sigabbrev_np(sig), static_cast<long long>(kernel_grace_ms(grace_ms_)),
                   static_cast<long long>(hard_stop_ms(grace_ms_)));
      stopping = true;
      std::int64_t now = monotonic_ns();
      deadline_ns = now + hard_stop_ms(grace_ms_) * 1'000'000;
      for (std::size_t i = 0; i < shards_.size(); ++i) {
        turns[i] = shards_.loop_turns(i);
        progress_ns[i] = now;
      }
      shards_.request_stop();
    }
  }

  // While stopping: a look at the shards every kWatchMs; one that has neither turned its loop
  // nor been idle for kStuckMs is stuck.
  static constexpr std::int64_t kWatchMs = 25;
  static constexpr std::int64_t kStuckMs = 250;

 public:
  // The kernels cut connections at kernel_grace_ms(); the process exits at hard_stop_ms() if a
  // shard is stuck then (shards that are busy or idle are let finish): the difference is the
  // time a healthy shard has to clean up.
  static std::int64_t kernel_grace_ms(std::int64_t grace_ms) { return grace_ms - reserve_ms(grace_ms); }
  static std::int64_t hard_stop_ms(std::int64_t grace_ms) { return std::max(grace_ms, kStuckMs); }

 private:
  static std::int64_t reserve_ms(std::int64_t grace_ms) { return std::min<std::int64_t>(grace_ms / 4, 500); }

  const Service& service_;
  ShardSet& shards_;
  std::int64_t grace_ms_;
  int signal_fd_;
  int done_fd_ = -1;
  std::thread thread_;
};

std::string usage(const Service& service, const Config& config) {
  return std::string(service.name) + ": " + service.about +
         "\n\nEvery knob is a flag --NAME=VALUE and a key of the config file (TOML) given with --config=FILE;\n"
         "a flag wins over the file. Durations are in milliseconds (names ending in _ms).\n"
         "  --config=FILE                 the config file\n"
         "  --print_config                print the effective config (as TOML --config reads) and exit\n"
         "  --help                        this\n\n" +
         config.help();
}

}  // namespace

void add_server_knobs(Config* config) {
  add_affinity_knobs(config);
  add_serving_knobs(config);
}

int run_server(int argc, char** argv, const Service& service) {
  const char* name = service.name;
  Config config;
  add_server_knobs(&config);
  if (service.add_knobs) service.add_knobs(config);

  std::string error;
  CommandLine cl;
  if (!parse_command_line(argc, argv, &config, &cl, &error)) {
    std::fprintf(stderr, "%s: %s\n", name, error.c_str());
    return 2;
  }
  if (cl.help) {
    std::fputs(usage(service, config).c_str(), stdout);
    return 0;
  }
  auto topology = Topology::discover(&error);
  if (topology == nullptr) {
    std::fprintf(stderr, "%s: %s\n", name, error.c_str());
    return 2;
  }
  AffinitySpec spec = affinity_spec(config);
  AffinityConfig affinity;
  if (!resolve_affinity(spec, *topology, &affinity, &error)) {
    std::fprintf(stderr, "%s: %s\n", name, error.c_str());
    return 2;
  }
  if (affinity.heap_pages < service.min_heap_pages) {
    std::string at = spec.heap_pages_at.empty() ? "heap_pages = " + std::to_string(spec.heap_pages) : spec.heap_pages_at;
    std::fprintf(stderr, "%s: %s: %s needs at least %zu pages per connection\n", name, at.c_str(), name,
                 service.min_heap_pages);
    return 2;
  }
  if (service.configure && !service.configure(config, &error)) {
    std::fprintf(stderr, "%s: %s\n", name, error.c_str());
    return 2;
  }
  if (cl.print_config) {
    std::fputs(config.print_toml().c_str(), stdout);
    return 0;
  }

  // Serve as many connections as the hard limit on open files allows.
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  // The stop signals are read by the signal thread only: blocked here before any thread starts,
  // so every shard thread and process inherits the mask.
  Kernel::install_signal_handlers();  // (SIGPIPE ignored)
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, sig);
  ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  int signal_fd = ::signalfd(-1, &signals, SFD_CLOEXEC);
  if (signal_fd < 0) {
    std::fprintf(stderr, "%s: signalfd: %s\n", name, std::strerror(errno));
    return 1;
  }

  Shared shared(service, static_cast<std::size_t>(affinity.shards));
  g_shared = &shared;
  shared.handoff = config.text("balance") == "handoff";
  shared.config.host = config.text("host");
  shared.config.port = static_cast<std::uint16_t>(config.integer("port"));
  shared.config.handler = service.handler;
  shared.config.message = service.message;
  shared.config.heap_pages = affinity.heap_pages;
  shared.config.pool_size = affinity.pool_size;
  shared.config.idle_timeout_ns = config.integer("idle_timeout_ms") * 1'000'000;

  // Every metric is registered now, and its cells placed where every shard (thread or process)
  // writes and any thread reads them, before a shard starts.
  metrics::Registry registry(affinity.shards);
  KernelMetrics kernel_metrics;
  ServerMetrics server_metrics;
  ShardMetrics shard_metrics;
  bool counting = config.boolean("metrics");
  if (counting) {
    kernel_metrics = KernelMetrics::add_to(registry);
    server_metrics = ServerMetrics::add_to(registry);
    shard_metrics = ShardMetrics::add_to(registry);
    shared.config.metrics = &server_metrics;
  }
  if (service.add_metrics) service.add_metrics(registry);
  std::size_t metric_bytes = registry.bytes_needed();
  SharedRegion metrics_region(SharedRegion::grow(0, metric_bytes, metrics::Registry::kAlign));
  registry.place(metrics_region.take(metric_bytes, metrics::Registry::kAlign), metric_bytes);
  set_served_registry(&registry);

  std::int64_t grace_ms = affinity.grace_ms;
  ShardSetOptions options;
  options.metrics = &registry;
  if (counting) {
    options.kernel_metrics = &kernel_metrics;
    options.shard_metrics = &shard_metrics;
  }
  options.affinity = affinity;
  options.affinity.grace_ms = SignalThread::kernel_grace_ms(grace_ms);
  options.init = init_shard;
  options.on_stop = drain_shard;
  options.fini = fini_shard;
  options.restart_stuck_ms = config.integer("restart_stuck_ms");
  options.max_run_ms = config.integer("max_run_ms");
  const std::string& io = config.text("io");
  options.completion_io = io != "readiness";
  options.recv_multishot = io == "multishot";
  auto shards = ShardSet::start(*topology, options, &error);
  if (shards == nullptr) {
    std::fprintf(stderr, "%s: %s\n", name, error.c_str());
    set_served_registry(nullptr);
    return 1;
  }
  std::printf("listening on %s:%u\n", shared.config.host.c_str(), shared.port->load());
  // The admin listener starts after the shards (with processes, after their fork).
  std::unique_ptr<AdminListener> admin;
  if (std::int64_t admin_port = config.integer("admin_port"); admin_port >= 0) {
    admin = AdminListener::start(config.text("admin_host"), static_cast<std::uint16_t>(admin_port), affinity.poller,
                                 &error);
    if (admin == nullptr) {
      std::fprintf(stderr, "%s: %s\n", name, error.c_str());
      shards->request_stop();
      shards->wait();
      set_served_registry(nullptr);
      return 1;
    }
    std::printf("admin listening on %s:%u\n", config.text("admin_host").c_str(), admin->port());
  }
  std::fflush(stdout);
  std::string cpus;
  for (int c : affinity.cpus) cpus += (cpus.empty() ? "" : ",") + std::to_string(c);
  std::fprintf(stderr,
               "%s: %d shard(s) (%s) on CPU %s, poller %s (io %s), isolation %s, balance %s, %zu heap pages per "
               "connection\n",
               name, affinity.shards, shards->processes() ? "processes" : "threads", cpus.c_str(),
               poller_name(affinity.poller), io.c_str(), isolation_name(affinity.isolation),
               config.text("balance").c_str(), affinity.heap_pages);
  int rc;
  {
    SignalThread signal_thread(service, *shards, grace_ms, signal_fd);
    rc = shards->wait();
  }
  admin.reset();
  ::close(signal_fd);
  g_shared = nullptr;
  set_served_registry(nullptr);
  return rc;
}

}  // namespace mnv
