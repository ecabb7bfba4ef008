// apps/http — the HTTP/1.1 server with TechEmpower-style endpoints, one shard per chosen core.
//
//   bazel run //apps/http -- --port=8080 --shards=2
//   curl http://127.0.0.1:8080/plaintext         # Hello, World!
//   curl http://127.0.0.1:8080/json              # {"message":"Hello, World!"}
//   curl --data-binary @file http://127.0.0.1:8080/echo
//   bazel run //apps/http -- --help              (every knob, with its default; [http]: http_site.h)
//
// Everything but HTTP is the server skeleton's (shard/server.h).
#include <cstdio>
#include <string>

#include "apps/http/http_site.h"
#include "shard/server.h"

namespace {
mnv::http::HttpMetrics g_http_metrics;  // registered at start when the metrics knob is on
bool g_counting = true;
}  // namespace

int main(int argc, char** argv) {
  mnv::http_app::add_routes(&mnv::http_app::g_site);
  mnv::Service http;
  http.name = "http";
  http.about = "HTTP/1.1: GET /plaintext, GET /json, POST /echo";
  http.handler = mnv::http::serve;
  http.message = &mnv::http_app::g_site;
  http.add_knobs = mnv::http_app::add_knobs;
  http.configure = [](const mnv::Config& config, std::string* error) {
    g_counting = config.boolean("metrics");
    return mnv::http_app::configure(config, &mnv::http_app::g_site.options, error);
  };
  // HTTP requests by method and status class, their latency, bad requests (GET /metrics on the
  // admin listener: --admin_port).
  http.add_metrics = [](mnv::metrics::Registry& registry) {
    if (!g_counting) return;
    g_http_metrics = mnv::http::HttpMetrics::add_to(registry);
    mnv::http_app::g_site.metrics = &g_http_metrics;
  };
  // The exit report: each shard's request count (on the shard's thread, after its kernel ended).
  http.fini_shard = [](mnv::Shard& shard, mnv::Server&) {
    std::fprintf(stderr, "http: shard %zu served %llu requests\n", shard.index(),
                 static_cast<unsigned long long>(mnv::http::requests_served()));
  };
  return mnv::run_server(argc, argv, http);
}
