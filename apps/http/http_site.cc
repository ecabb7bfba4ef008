#include "apps/http/http_site.h"

#include "runtime/process.h"

namespace mnv::http_app {

using http::Method;
using http::Request;
using http::Response;

http::Site g_site;

namespace {

// Constant bodies: sent from where they are, gathered with the head (Response::send_static).
Task<> plaintext(Request&, Response& res) {
  res.header("Content-Type", "text/plain");
  co_await res.send_static("Hello, World!");
}

Task<> json(Request&, Response& res) {
  res.header("Content-Type", "application/json");
  co_await res.send_static("{\"message\":\"Hello, World!\"}");
}

// The body back: whole when it is small, else streamed as a chunked response.
Task<> echo(Request& req, Response& res) {
  res.header("Content-Type", "application/octet-stream");
  if (req.header("transfer-encoding").empty() && req.content_length() <= 4096) {
    char buf[4096];
    std::size_t n = co_await req.read_all(buf, sizeof buf);
    if (req.body_error() != 0) co_return;
    co_await res.send(std::string_view(buf, n));
    co_return;
  }
  co_await res.begin_chunked();
  for (;;) {
    std::string_view piece = co_await req.read_some();
    if (piece.empty()) break;
    co_await res.chunk(piece);
  }
  co_await res.end_chunked();
}

}  // namespace

void add_routes(http::Site* site) {
  site->router.add(Method::kGet, "/plaintext", plaintext);
  site->router.add(Method::kGet, "/json", json);
  site->router.add(Method::kPost, "/echo", echo);
}

void add_knobs(Config& config) {
  http::ServerOptions d;
  config.add_int("http", "max_target", d.limits.max_target, 16, 65535, "request-target bytes; over it: 414");
  config.add_int("http", "max_head", d.limits.max_head, 64, 65535,
                 "request head bytes (a head over the 4080-byte receive ring takes a max_head buffer from the connection's heap while it is served); over it: 431");
  config.add_int("http", "max_headers", d.limits.max_headers, 1, http::Limits::kMaxHeaderCapacity,
                 "header fields per request; over it: 431");
  config.add_int("http", "max_body", static_cast<std::int64_t>(d.limits.max_body), 0, std::int64_t{1} << 40,
                 "request body bytes; over it: 413");
  config.add_int("http", "header_timeout_ms", d.header_timeout_ns / 1'000'000, 1, 3'600'000,
                 "a request's head must arrive within this, from its first byte (slowloris)");
  config.add_int("http", "body_timeout_ms", d.body_timeout_ns / 1'000'000, 1, 3'600'000,
                 "a request's whole body must arrive within this");
  config.add_int("http", "keepalive_timeout_ms", d.keepalive_timeout_ns / 1'000'000, 1, 3'600'000,
                 "an idle keep-alive connection is closed after this");
  config.add_int("http", "send_timeout_ms", d.send_timeout_ns / 1'000'000, 1, 3'600'000,
                 "a response write blocked this long (the client stopped reading) closes the connection");
}

bool configure(const Config& config, http::ServerOptions* o, std::string*) {
  o->limits.max_target = static_cast<std::uint32_t>(config.integer("max_target"));
  o->limits.max_head = static_cast<std::uint32_t>(config.integer("max_head"));
  o->limits.max_headers = static_cast<std::uint32_t>(config.integer("max_headers"));
  o->limits.max_body = static_cast<std::uint64_t>(config.integer("max_body"));
  o->header_timeout_ns = config.integer("header_timeout_ms") * 1'000'000;
  o->body_timeout_ns = config.integer("body_timeout_ms") * 1'000'000;
  o->keepalive_timeout_ns = config.integer("keepalive_timeout_ms") * 1'000'000;
  o->send_timeout_ns = config.integer("send_timeout_ms") * 1'000'000;
  return true;
}

}  // namespace mnv::http_app
