// shard/metrics_page.h — a server's metrics as an HTTP route: the Prometheus text exposition
// (metrics/prometheus.h) of every shard's cells, one series per shard with a `shard` label.
//
// run_server() (shard/server.h) makes the server's registry, lets the app register its own
// metrics (Service::add_metrics), places every cell before any shard starts and names the
// registry here; the admin listener (admin_port) serves this page at GET /metrics. An app can
// mount it on its own router too:
//
//   site.router.add(mnv::http::Method::kGet, "/metrics", mnv::metrics_page);
//
// Rendering reads the cells with relaxed loads (it never blocks a writing shard) and builds the
// page in a std::string on the global heap: a scrape is not the hot path. On the admin listener
// it runs on the admin thread, beside the shards; mounted on a shard's router it holds that
// shard for the render (tens of µs for the runtime's own series: perf/RESULTS.md "Metrics").
#pragma once

#include "metrics/registry.h"
#include "net/http/server.h"

namespace mnv {

// The registry metrics_page() renders: the running server's (run_server sets it before any
// shard starts and clears it at the end), or one a test names. Null: none.
const metrics::Registry* served_registry();
void set_served_registry(const metrics::Registry* registry);

// GET /metrics: 200 with the exposition (Content-Type text/plain; version=0.0.4), or 503 when
// no registry is named. HEAD answers the head only.
Task<> metrics_page(http::Request& req, http::Response& res);

}  // namespace mnv
