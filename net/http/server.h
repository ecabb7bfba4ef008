// net/http/server.h — the HTTP/1.x server: one micro-thread per connection (net/service.h's
// handler) reading requests with RequestParser straight from the socket's receive ring.
//
//   mnv::http::Site site;                              // routes + options, set up before serving
//   site.router.add(Method::kGet, "/plaintext", plaintext);
//   ServerConfig{.handler = mnv::http::serve, .message = &site}
//
//   mnv::Task<> plaintext(Request& req, Response& res) {
//     res.header("Content-Type", "text/plain");
//     co_await res.send("Hello, World!");
//   }
//
// Semantics: HTTP/1.0 and 1.1, keep-alive by default in 1.1 and on request in 1.0, Connection:
// close, pipelining (requests already buffered are answered before anything is flushed, so a
// pipelined batch goes out in one send), Content-Length and chunked request bodies, fixed-length
// and chunked responses, Expect: 100-continue (sent when the handler first waits for body bytes),
// HEAD (the head only), OPTIONS * (Allow), Date and Server on every response, 404 for no route,
// 405 with Allow for a wrong method. Bad input gets the parser's status (400, 413, 414, 431, 501,
// 505) with a one-line body and Connection: close. A head larger than the receive ring (4080
// bytes) is read up to max_head: its first bytes move into a max_head-byte buffer from the
// micro-heap, held only while that request is served (431 if the heap cannot hold it). Timeouts (each closes the connection): the whole head within
// header_timeout, the whole body within body_timeout, the next request's first byte within
// keepalive_timeout, each blocked send within send_timeout. A handler that faults (trap, ENOMEM)
// gets a 500 if nothing of its response was buffered yet, then the connection closes (the server's
// supervisor counts the death; the shard serves on). On drain the request in hand is answered
// with Connection: close.
//
// Views (Request's method, target, path, query, header()) point into the receive ring: they are
// valid until the handler's first body read that has to wait for more input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/http/http_metrics.h"
#include "net/http/request_parser.h"
#include "net/http/router.h"
#include "net/service.h"
#include "net/socket.h"

namespace mnv::http {

struct ServerOptions {
  Limits limits;
  std::int64_t header_timeout_ns = 10'000'000'000;     // from a request's first byte to its head's end
  std::int64_t body_timeout_ns = 30'000'000'000;       // for the whole request body
  std::int64_t keepalive_timeout_ns = 60'000'000'000;  // between requests
  std::int64_t send_timeout_ns = 30'000'000'000;       // each blocked write of a response
  std::string_view server_name = "mnv";
};

// What serve() is handed (ServerConfig::message): routes and options, read-only while serving.
struct Site {
  Router router;
  ServerOptions options;
  const HttpMetrics* metrics = nullptr;  // counted into the kernel's cells (http_metrics.h); null: none
};

class Connection;

class Request {
 public:
  Method method() const { return head_->method; }
  std::string_view method_name() const { return head_->method_name; }
  std::string_view target() const { return head_->target; }
  std::string_view path() const { return path_; }
  std::string_view query() const { return query_; }  // after '?', without it
  int version_minor() const { return head_->version_minor; }
  // A field's value by lowercase name ("" if absent; *found says which).
  std::string_view header(std::string_view lower_name, bool* found = nullptr) const {
    return head_->headers.find(lower_name, found);
  }
  bool has_body() const { return head_->framing != Framing::kNone; }
  std::uint64_t content_length() const { return head_->content_length; }  // with Content-Length

  // The next piece of the body as a view into the receive ring, valid until the next call; empty
  // at the end of the body. A bad chunk, a body over max_body, or input ending early ends the
  // body too, with body_error() set (the server answers it and closes).
  Task<std::string_view> read_some();
  // The whole body into buf; returns its size, or cap + 1 (the rest discarded) when it is larger.
  Task<std::size_t> read_all(char* buf, std::size_t cap);
  // 0, or the status a broken body earns (400, 413; 400 for a truncated one).
  int body_error() const { return body_error_; }

 private:
  friend class Connection;
  Connection* conn_ = nullptr;
  const RequestHead* head_ = nullptr;
  std::string_view path_, query_;
  int body_error_ = 0;
};

class Response {
 public:
  static constexpr std::size_t kMaxHeaders = 16;

  void status(int code) { status_ = code; }
  // Adds a field; the views must stay valid until the head is sent. False when full (16).
  bool header(std::string_view name, std::string_view value);
  // The whole response with a fixed-length body (HEAD: its head only).
  Task<> send(std::string_view body);
  // The same with a body that outlives the connection (a constant, a file loaded at start): it
  // is sent from where it is, gathered with the head into one send, not copied into the send
  // ring (net/socket.h's add_static(), whose lifetime rule it must meet).
  Task<> send_static(std::string_view body);
  // A chunked response: begin, any number of chunks, end (end() is also called for a handler
  // that returns without it).
  Task<> begin_chunked();
  Task<> chunk(std::string_view data);
  Task<> end_chunked();
  // Whether any of the response was buffered for sending.
  bool started() const { return state_ != State::kNone; }

 private:
  friend class Connection;
  enum class State : std::uint8_t { kNone, kChunked, kDone };
  struct Field {
    std::string_view name, value;
  };
  Connection* conn_ = nullptr;
  int status_ = 200;
  State state_ = State::kNone;
  std::uint8_t nfields_ = 0;
  Field fields_[kMaxHeaders];
};

// The connection handler (net/service.h's Handler): conn.message is a const Site*.
Task<> serve(Accepted& conn);

// Requests answered on this thread (shard) so far.
std::uint64_t requests_served();

}  // namespace mnv::http
