// shard/metrics_page.cc — the scrape route (shard/metrics_page.h).
#include "shard/metrics_page.h"

#include <atomic>
#include <string>

#include "metrics/prometheus.h"

namespace mnv {
namespace {

std::atomic<const metrics::Registry*> g_registry{nullptr};

}  // namespace

const metrics::Registry* served_registry() { return g_registry.load(std::memory_order_acquire); }

void set_served_registry(const metrics::Registry* registry) { g_registry.store(registry, std::memory_order_release); }

Task<> metrics_page(http::Request&, http::Response& res) {
  const metrics::Registry* registry = served_registry();
  if (registry == nullptr) {
    res.status(503);
    res.header("Content-Type", "text/plain");
    co_await res.send("no metrics registry in this process\n");
    co_return;
  }
  std::string body;
  metrics::append_prometheus(*registry, &body);
  res.header("Content-Type", metrics::kPrometheusContentType);
  co_await res.send(body);
}

}  // namespace mnv
