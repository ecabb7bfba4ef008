// perf/http_parser_bench.cc — the HTTP/1.1 request parser (net/http) against llhttp, on the same
// bytes in the same binary (Google Benchmark).
//
//   get        one typical ~200-byte GET request, parsed whole
//   pipelined  16 of them back to back in one buffer (a 16-deep pipelined read)
//
// Ours: parse_head() then parse_body(), the head's fields indexed as views. llhttp (Debian's
// node-llhttp sources, built with -O2): "views" has callbacks that keep the URL and every header
// name and value as a view (what a server needs, so the fairer peer), "bare" has none. Each
// reports items_per_second = requests parsed per second on one core.
//
// Run: bazel run --config=opt //perf:http_parser_bench (tools/mnv bench pins it to one core).
#include <benchmark/benchmark.h>
#include <llhttp.h>

#include <cstring>
#include <string>
#include <string_view>

#include "net/http/request_parser.h"

namespace mnv::http {
namespace {

const std::string kGet =
    "GET /plaintext HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) wrk\r\n"
    "Accept: text/plain,text/html;q=0.9,*/*;q=0.8\r\n"
    "Accept-Encoding: gzip, deflate\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

std::string batch(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += kGet;
  return s;
}

// Parses every request in `in`; returns how many.
int parse_ours(RequestParser& p, std::string_view in) {
  ByteSpans s(in);
  int n = 0;
  while (!s.empty()) {
    p.reset();
    if (p.parse_head(s) != HeadStatus::kComplete) break;
    benchmark::DoNotOptimize(p.head().headers.size());
    s = s.advanced(p.head_size());
    while (!p.body_done()) {
      BodyStep b = p.parse_body(s);
      s = s.advanced(b.consumed);
      if (b.error != Error::kNone) return n;
    }
    ++n;
  }
  return n;
}

void run_ours(benchmark::State& state, const std::string& in, int per_buffer) {
  RequestParser p;
  if (parse_ours(p, in) != per_buffer) state.SkipWithError("did not parse");
  for (auto _ : state) {
    int n = parse_ours(p, in);
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations() * per_buffer);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(in.size()));
}

// llhttp with views: what a server keeps of each request.
struct Views {
  std::string_view url;
  std::string_view names[64];
  std::string_view values[64];
  int headers = 0;
  int messages = 0;
};
Views* views(llhttp_t* p) { return static_cast<Views*>(p->data); }
int on_begin(llhttp_t* p) {
  views(p)->headers = 0;
  return 0;
}
int on_url(llhttp_t* p, const char* at, size_t n) {
  views(p)->url = std::string_view(at, n);
  return 0;
}
int on_field(llhttp_t* p, const char* at, size_t n) {
  Views* v = views(p);
  if (v->headers < 64) v->names[v->headers] = std::string_view(at, n);
  return 0;
}
int on_value(llhttp_t* p, const char* at, size_t n) {
  Views* v = views(p);
  if (v->headers < 64) v->values[v->headers++] = std::string_view(at, n);
  return 0;
}
int on_complete(llhttp_t* p) {
  ++views(p)->messages;
  return 0;
}

void run_llhttp(benchmark::State& state, const std::string& in, int per_buffer, bool with_views) {
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_message_complete = on_complete;
  if (with_views) {
    settings.on_message_begin = on_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_field;
    settings.on_header_value = on_value;
  }
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &settings);
  Views v;
  parser.data = &v;
  if (llhttp_execute(&parser, in.data(), in.size()) != HPE_OK || v.messages != per_buffer) {
    state.SkipWithError("llhttp did not parse");
  }
  for (auto _ : state) {
    llhttp_execute(&parser, in.data(), in.size());  // keep-alive: the parser goes on
    benchmark::DoNotOptimize(v.messages);
  }
  state.SetItemsProcessed(state.iterations() * per_buffer);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(in.size()));
}

void BM_Ours_Get(benchmark::State& state) { run_ours(state, kGet, 1); }
void BM_Llhttp_Get_Views(benchmark::State& state) { run_llhttp(state, kGet, 1, true); }
void BM_Llhttp_Get_Bare(benchmark::State& state) { run_llhttp(state, kGet, 1, false); }
void BM_Ours_Pipelined16(benchmark::State& state) { run_ours(state, batch(16), 16); }
void BM_Llhttp_Pipelined16_Views(benchmark::State& state) { run_llhttp(state, batch(16), 16, true); }
void BM_Llhttp_Pipelined16_Bare(benchmark::State& state) { run_llhttp(state, batch(16), 16, false); }

BENCHMARK(BM_Ours_Get);
BENCHMARK(BM_Llhttp_Get_Views);
BENCHMARK(BM_Llhttp_Get_Bare);
BENCHMARK(BM_Ours_Pipelined16);
BENCHMARK(BM_Llhttp_Pipelined16_Views);
BENCHMARK(BM_Llhttp_Pipelined16_Bare);

}  // namespace
}  // namespace mnv::http

BENCHMARK_MAIN();
