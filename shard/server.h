// shard/server.h — the server skeleton: what every app's main() would otherwise repeat.
//
// An app hands run_server() its service: the per-connection micro-thread (net/service.h), any
// per-shard state (init_shard / fini_shard), its own config table and what it does on SIGHUP.
// Its main() is then one call:
//
//   int main(int argc, char** argv) {
//     mnv::Service echo{.name = "echo", .about = "each line is answered", .handler = serve};
//     return mnv::run_server(argc, argv, echo);
//   }
//
// The skeleton owns:
//  * the config: its own knobs (shard/affinity_config.h: shards, cpuset, poller, isolation,
//    shard_mode, grace_ms, [service] heap_pages and pool_size, [shard.N] cpu; and here: io,
//    balance, max_run_ms, restart_stuck_ms, metrics, [service] host, port, idle_timeout_ms,
//    admin_port and admin_host) plus the
//    app's table, each a TOML key and a --flag of the same name (shard/config.h); --config=FILE,
//    --help (every
//    knob with its default), --print_config (the effective config, as TOML --config reads back).
//    Every value is checked before any shard starts, including what could not serve (a heap
//    smaller than the service needs);
//  * the shards: threads or processes (shard/shard.h), one Server per shard on one port
//    (SO_REUSEPORT), or with balance = "handoff" each accepted connection handed to the shard
//    with the fewest connections in progress; the first line on stdout is
//    "listening on HOST:PORT" with the bound port;
//  * signals: SIGTERM or SIGINT stops the shards: each drains its server (Server::drain(): no
//    new connections, idle ones close at once, a busy handler finishes the request in hand and
//    returns; Accepted::draining() says so), and what is still in flight gets a little less
//    than grace_ms (a quarter of it, at most 500 ms, is kept for the shards to clean up). A
//    second signal exits at once (status 1). The process exits at the end of grace_ms
//    (status 1; at least 250 ms after the signal) when a shard is stuck then in a handler that
//    never yields: its loop has neither turned nor slept for 250 ms (shards that are busy
//    stopping or cleaning up are let finish). SIGHUP runs the app's `reload`. The signals are
//    blocked in every thread and read by one thread of the skeleton;
//  * metrics (metrics/README.md): one registry for every shard, placed in shared memory before
//    the shards start; the runtime's own series unless metrics = false, the app's through
//    add_metrics; with admin_port (-1, off, by default; 0 picks a free one, printed as "admin
//    listening on HOST:PORT" after the first line) GET /metrics on admin_host (loopback by
//    default: the page has no authentication) from a thread beside the shards
//    (shard/admin_listener.h);
//  * exit codes: 0 after a clean stop, 2 for a bad flag or config (nothing started), 1 for a
//    failure at run time (a shard that could not start, stayed down, or had to be cut off).
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "metrics/registry.h"
#include "net/service.h"
#include "shard/config.h"
#include "shard/shard.h"

namespace mnv {

struct Service {
  const char* name = "server";  // starts log lines ("echo: ...")
  const char* about = "";       // one line under --help
  Handler handler = nullptr;    // each connection's micro-thread
  void* message = nullptr;      // ServerConfig::message, handed to every handler
  // The smallest heap_pages a connection can be served with; smaller is a config error.
  std::size_t min_heap_pages = 2;
  // Declares the app's own knobs, in its own table (config.add_bool("echo", ...)).
  std::function<void(Config& config)> add_knobs;
  // Reads them once the whole config is valid, before any shard starts; false (with *error)
  // is a config error (exit 2).
  std::function<bool(const Config& config, std::string* error)> configure;
  // On each shard's thread once its server listens, and after its kernel returned.
  std::function<bool(Shard& shard, Server& server, std::string* error)> init_shard;
  std::function<void(Shard& shard, Server& server)> fini_shard;
  // Registers the app's own metrics (metrics/registry.h: counters, gauges, latency histograms,
  // by name, help and labels) once, before any shard starts; keep the handles (plain values,
  // the same on every shard) where the handlers find them. A handler on a shard counts into its
  // own shard's cells with relaxed stores, no lock, no allocation:
  //   Shard::current()->metrics().add(no_bid_floor);      (or Kernel::current()->metrics())
  //   Shard::current()->metrics().record(decide_seconds, ns);
  // Every series is scraped at GET /metrics on the admin listener (admin_port) and by
  // metrics_page (shard/metrics_page.h) wherever the app mounts it, per shard (label `shard`).
  std::function<void(metrics::Registry& registry)> add_metrics;
  // SIGHUP, on the skeleton's signal thread in the process that started the shards (with
  // shards as processes, reach them through memory shared before the start).
  std::function<void()> reload;
};

// Declares every knob of the skeleton (above) on a config, as run_server() does before the app's.
void add_server_knobs(Config* config);

// Runs the server to the end; returns the exit code (0, 1 or 2: above).
int run_server(int argc, char** argv, const Service& service);

}  // namespace mnv
