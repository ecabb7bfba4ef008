// Tests of the app-facing metrics API on shards (threads and processes): each shard counts into
// its own cells (Shard::metrics(), Kernel::current()->metrics()), the registry placed in a
// SharedRegion before start, and metrics_page() scrapes every shard's, labelled `shard`;
// cross-shard calls count their messages each way and their latency (shard/shard_metrics.h).
#include "shard/metrics_page.h"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "metrics/prometheus.h"
#include "shard/cross_call.h"
#include "shard/shard.h"
#include "shard/shard_metrics.h"
#include "shard/shared_memory.h"
#include "tests/echo_fixture.h"

namespace mnv {
namespace {

using http::Method;
using http::Request;
using http::Response;

metrics::Counter g_inits, g_hits;  // registered before start: the same on every shard

Task<> hit(Request&, Response& res) {
  Kernel::current()->metrics().add(g_hits);
  co_await res.send("hit\n");
}

std::array<std::unique_ptr<Server>, 2> g_servers;  // each shard's (in its own process, with processes)
http::Site g_site;

std::string get(std::uint16_t port, const std::string& path) {
  testing::Client c(port);
  EXPECT_TRUE(c.connected());
  c.send("GET " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  return c.recv_all();
}

class MetricsPageTest : public ::testing::TestWithParam<ShardMode> {};

TEST_P(MetricsPageTest, EveryShardCountsIntoItsOwnCellsAndOneScrapeSeesThemAll) {
  std::string error;
  auto topo = Topology::discover(&error);
  ASSERT_NE(topo, nullptr) << error;
  ShardSetOptions o;
  std::vector<int> cpus;
  for (int c : topo->allowed()) cpus.push_back(c);
  o.affinity.shards = cpus.size() >= 2 ? 2 : 1;
  o.affinity.cpus.assign(cpus.begin(), cpus.begin() + o.affinity.shards);
  o.affinity.grace_ms = 100;
  o.affinity.pool_size = 16;
  o.affinity.shard_mode = GetParam();

  metrics::Registry reg(o.affinity.shards);
  g_inits = reg.counter("app_inits", "Shard starts, weighted by shard index + 1.");
  g_hits = reg.counter("app_hits", "GET /hit answered.");
  SharedRegion region(SharedRegion::grow(0, reg.bytes_needed(), metrics::Registry::kAlign));
  reg.place(region.take(reg.bytes_needed(), metrics::Registry::kAlign), reg.bytes_needed());
  o.metrics = &reg;
  set_served_registry(&reg);
  g_site.router = http::Router();
  g_site.router.add(Method::kGet, "/hit", hit);
  g_site.router.add(Method::kGet, "/metrics", metrics_page);

  SharedObject<std::atomic<std::uint16_t>> port{std::uint16_t{0}};
  o.init = [&](Shard& s, std::string* err) {
    s.metrics().add(g_inits, s.index() + 1);
    if (s.index() != 0) return true;  // one listener: the test knows which shard answers
    ServerConfig c;
    c.handler = http::serve;
    c.message = &g_site;
    c.pool_size = 8;
    c.heap_pages = 16;
    g_servers[0] = Server::listen(s.kernel(), c, err);
    if (g_servers[0] == nullptr) return false;
    port->store(g_servers[0]->port());
    return true;
  };
  o.fini = [](Shard& s) { g_servers[s.index()].reset(); };
  auto set = ShardSet::start(*topo, o, &error);
  ASSERT_NE(set, nullptr) << error;

  for (int i = 0; i < 3; ++i) EXPECT_NE(get(port->load(), "/hit").find("\r\n\r\nhit\n"), std::string::npos);
  std::string page = get(port->load(), "/metrics");
  set->request_stop();
  EXPECT_EQ(set->wait(), 0);
  set_served_registry(nullptr);

  EXPECT_EQ(page.rfind("HTTP/1.1 200 ", 0), 0u) << page;
  EXPECT_NE(page.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos) << page;
  EXPECT_NE(page.find("# TYPE app_hits_total counter\n"), std::string::npos) << page;
  EXPECT_NE(page.find("app_hits_total{shard=\"0\"} 3\n"), std::string::npos) << page;
  EXPECT_NE(page.find("app_inits_total{shard=\"0\"} 1\n"), std::string::npos) << page;
  if (o.affinity.shards == 2) {
    EXPECT_NE(page.find("app_hits_total{shard=\"1\"} 0\n"), std::string::npos) << page;
    EXPECT_NE(page.find("app_inits_total{shard=\"1\"} 2\n"), std::string::npos) << page;
  }
  EXPECT_EQ(reg.total(g_hits), 3u);  // the parent reads the cells the shards (processes too) wrote
}

constexpr int kCalls = 10;

void plus_one(const ShardMessage& req, ShardMessage* reply, void*) { reply->payload[0] = req.payload[0] + 1; }

Thread caller(int count) {
  for (int i = 0; i < count; ++i) {
    unsigned char v = static_cast<unsigned char>(i);
    ShardMessage reply = co_await cross_call(1, 7, &v, 1, 5'000'000'000);
    (void)reply;
  }
  Shard::current()->set().request_stop();
}

TEST_P(MetricsPageTest, CrossShardCallsAreCountedWithTheirLatency) {
  std::string error;
  auto topo = Topology::discover(&error);
  ASSERT_NE(topo, nullptr) << error;
  std::vector<int> cpus;
  for (int c : topo->allowed()) cpus.push_back(c);
  if (cpus.size() < 2) GTEST_SKIP() << "needs 2 CPUs";
  ShardSetOptions o;
  o.affinity.shards = 2;
  o.affinity.cpus.assign(cpus.begin(), cpus.begin() + 2);
  o.affinity.grace_ms = 100;
  o.affinity.pool_size = 16;
  o.affinity.shard_mode = GetParam();
  metrics::Registry reg(2);
  ShardMetrics sm = ShardMetrics::add_to(reg);
  SharedRegion region(SharedRegion::grow(0, reg.bytes_needed(), metrics::Registry::kAlign));
  reg.place(region.take(reg.bytes_needed(), metrics::Registry::kAlign), reg.bytes_needed());
  o.metrics = &reg;
  o.shard_metrics = &sm;
  HeapPool pool(16, 4);
  o.init = [&pool](Shard& s, std::string*) {
    if (s.index() == 1) s.handle(7, plus_one, nullptr);
    if (s.index() == 0) s.kernel().start(pool, caller, kCalls);
    return true;
  };
  auto set = ShardSet::start(*topo, o, &error);
  ASSERT_NE(set, nullptr) << error;
  EXPECT_EQ(set->wait(), 0);  // the caller stopped the set
  EXPECT_EQ(reg.value(sm.mail_sent, 0), std::uint64_t{kCalls});  // the requests
  EXPECT_EQ(reg.value(sm.mail_sent, 1), std::uint64_t{kCalls});  // the replies
  EXPECT_EQ(reg.value(sm.mail_received, 0), std::uint64_t{kCalls});
  EXPECT_EQ(reg.value(sm.mail_received, 1), std::uint64_t{kCalls});
  EXPECT_EQ(reg.total(sm.mail_refused), 0u);
  metrics::HistogramSnapshot latency = reg.snapshot(sm.call_latency, 0);
  EXPECT_EQ(latency.count(), std::uint64_t{kCalls});
  EXPECT_GT(latency.sum_ns(), 0u);
  EXPECT_EQ(reg.snapshot(sm.call_latency, 1).count(), 0u);
}

TEST(MetricsPageNoRegistryTest, AnswersServiceUnavailable) {
  set_served_registry(nullptr);
  http::Site site;
  site.router.add(Method::kGet, "/metrics", metrics_page);
  ServerConfig c;
  c.handler = http::serve;
  c.message = &site;
  c.pool_size = 4;
  c.heap_pages = 16;
  testing::ServerThread s(PollerKind::kIoUring, c);
  ASSERT_NE(s.port(), 0);
  std::string page = get(s.port(), "/metrics");
  EXPECT_EQ(page.rfind("HTTP/1.1 503 ", 0), 0u) << page;
}

INSTANTIATE_TEST_SUITE_P(Modes, MetricsPageTest, ::testing::Values(ShardMode::kThreads, ShardMode::kProcesses),
                         [](const ::testing::TestParamInfo<ShardMode>& i) { return std::string(shard_mode_name(i.param)); });

}  // namespace
}  // namespace mnv
