// metrics/prometheus_test.cc — the text exposition: exact lines for counters and gauges per
// shard, histograms on the reduced `le` bounds, escaping, the seconds format; and a populated
// registry's exposition accepted by `promtool check metrics`.
#include "metrics/prometheus.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "metrics/registry.h"
#include "metrics/test_cells.h"

namespace mnv::metrics {
namespace {

std::string seconds(std::uint64_t ns) {
  std::string s;
  append_seconds(ns, &s);
  return s;
}

TEST(PrometheusTest, SecondsAreExactDecimals) {
  EXPECT_EQ(seconds(0), "0");
  EXPECT_EQ(seconds(1'000), "0.000001");
  EXPECT_EQ(seconds(1), "0.000000001");
  EXPECT_EQ(seconds(1'500'000'000), "1.5");
  EXPECT_EQ(seconds(10'000'000'000), "10");
  EXPECT_EQ(seconds(123'456'789'012), "123.456789012");
}

TEST(PrometheusTest, EscapesLabelValuesAndHelp) {
  std::string s;
  append_label_value("a\\b\"c\nd", &s);
  EXPECT_EQ(s, "a\\\\b\\\"c\\nd");
  s.clear();
  append_help_text("say \"hi\"\\\nbye", &s);
  EXPECT_EQ(s, "say \"hi\"\\\\\\nbye");  // quotes stay in help text
}

TEST(PrometheusTest, CountersAndGaugesOnePerShard) {
  Registry reg(2);
  Counter peer = reg.counter("mnv_closed", "Connections closed,\nby reason.", {{"reason", "peer"}});
  Counter odd = reg.counter("mnv_closed", "Connections closed,\nby reason.", {{"reason", "say \"x\""}});
  Gauge open = reg.gauge("mnv_open", "Open connections.");
  TestCells cells(reg);
  reg.shard(0).add(peer, 3);
  reg.shard(1).add(odd);
  reg.shard(1).set(open, -2);
  std::string out = "(kept) ";
  append_prometheus(reg, &out);
  EXPECT_EQ(out,
            "(kept) # HELP mnv_closed_total Connections closed,\\nby reason.\n"
            "# TYPE mnv_closed_total counter\n"
            "mnv_closed_total{reason=\"peer\",shard=\"0\"} 3\n"
            "mnv_closed_total{reason=\"peer\",shard=\"1\"} 0\n"
            "mnv_closed_total{reason=\"say \\\"x\\\"\",shard=\"0\"} 0\n"
            "mnv_closed_total{reason=\"say \\\"x\\\"\",shard=\"1\"} 1\n"
            "# HELP mnv_open Open connections.\n"
            "# TYPE mnv_open gauge\n"
            "mnv_open{shard=\"0\"} 0\n"
            "mnv_open{shard=\"1\"} -2\n");
}

TEST(PrometheusTest, HistogramsOnTheReducedBounds) {
  Registry reg(1);
  Histogram h = reg.histogram("mnv_latency_seconds", "Latency.", {{"route", "/"}});
  TestCells cells(reg);
  ShardCells c = reg.shard(0);
  c.record(h, 500);             // under 1 us
  c.record(h, 1'500);           // le 2 us
  c.record(h, 3'000'000);       // le 5 ms
  c.record(h, 3'000'000);
  c.record(h, 20'000'000'000);  // over 10 s
  std::string out;
  append_prometheus(reg, &out);
  std::string expected =
      "# HELP mnv_latency_seconds Latency.\n"
      "# TYPE mnv_latency_seconds histogram\n";
  const char* les[] = {"0.000001", "0.000002", "0.000005", "0.00001", "0.00002", "0.00005", "0.0001", "0.0002",
                       "0.0005",   "0.001",    "0.002",    "0.005",   "0.01",    "0.02",    "0.05",   "0.1",
                       "0.2",      "0.5",      "1",        "2",       "5",       "10"};
  int cumulative[] = {1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4};
  for (int i = 0; i < 22; ++i) {
    expected += std::string("mnv_latency_seconds_bucket{route=\"/\",shard=\"0\",le=\"") + les[i] + "\"} " +
                std::to_string(cumulative[i]) + "\n";
  }
  expected +=
      "mnv_latency_seconds_bucket{route=\"/\",shard=\"0\",le=\"+Inf\"} 5\n"
      "mnv_latency_seconds_sum{route=\"/\",shard=\"0\"} 20.006002\n"
      "mnv_latency_seconds_count{route=\"/\",shard=\"0\"} 5\n";
  EXPECT_EQ(out, expected);
}

// The exposition of a registry with every kind, labels, escapes and several shards, as the
// runtime's will look.
std::string populated_exposition() {
  Registry reg(3);
  Counter accepted = reg.counter("mnv_connections_accepted", "Connections accepted.");
  Counter peer = reg.counter("mnv_connections_closed", "Connections closed, by reason.", {{"reason", "peer"}});
  Counter fault = reg.counter("mnv_connections_closed", "Connections closed, by reason.", {{"reason", "fault"}});
  Counter odd = reg.counter("mnv_http_requests", "HTTP requests, by method and path.",
                            {{"method", "GET"}, {"path", "/a \"quoted\" \\ path\nwith a newline"}});
  Gauge open = reg.gauge("mnv_connections_open", "Connections open now.");
  Histogram lat = reg.histogram("mnv_request_duration_seconds", "Request latency.", {{"method", "GET"}});
  Histogram lat_post = reg.histogram("mnv_request_duration_seconds", "Request latency.", {{"method", "POST"}});
  Histogram call = reg.histogram("mnv_cross_shard_call_duration_seconds", "Cross-shard call latency.");
  TestCells cells(reg);
  for (int s = 0; s < 3; ++s) {
    ShardCells c = reg.shard(s);
    c.add(accepted, 100 + static_cast<std::uint64_t>(s));
    c.add(peer, 90);
    c.add(fault, static_cast<std::uint64_t>(s));
    c.add(odd, 7);
    c.set(open, 10 - s);
    for (std::uint64_t v = 1; v < 2000; ++v) {
      c.record(lat, v * 997 * static_cast<std::uint64_t>(s + 1));
      c.record(lat_post, v * v * 1013);
      c.record(call, v * 3);
    }
  }
  std::string out;
  append_prometheus(reg, &out);
  return out;
}

TEST(PrometheusTest, PromtoolAcceptsAPopulatedRegistry) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool not found: install Debian's prometheus package (tools/mnv setup does)";
  }
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string path = std::string(tmp != nullptr ? tmp : "/tmp") + "/metrics_exposition.txt";
  std::string text = populated_exposition();
  {
    std::ofstream f(path);
    f << text;
  }
  std::string cmd = "promtool check metrics < '" + path + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string said;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) said += buf;
  int status = pclose(p);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "promtool check metrics said:\n" << said << "\non:\n" << text.substr(0, 2000);
  EXPECT_EQ(said, "") << "promtool check metrics said:\n" << said;
}

}  // namespace
}  // namespace mnv::metrics
