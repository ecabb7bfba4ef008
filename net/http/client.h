// net/http/client.h — a keep-alive HTTP/1.1 client connection on the runtime.
//
// One Client is one TCP connection, used from one micro-thread (it lives in the thread's frame,
// so in its micro-heap). Requests are written into the socket's send ring by send(); they go out
// on flush() or, lazily, when receive() first has to wait for input, so several send()s before a
// receive() are pipelined in one write. Responses come back in order: each receive() parses the
// next one with ResponseParser (Content-Length, chunked, until-close, no body for 1xx/204/304
// and for the answer to a HEAD request, which the client remembers per outstanding request).
//
//   mnv::http::Client c(opts);                 // opts.host: the Host field's value
//   co_await c.connect(addr, len);             // non-blocking, ClientOptions::connect_timeout_ns
//   co_await c.send({.method = "GET", .target = "/plaintext"});
//   mnv::http::Response r = co_await c.receive(body_buffer);
//
// Timeouts: the connect has its own deadline; each response has one, from the start of its
// receive() to its last byte (ClientOptions::response_timeout_ns), however the bytes trickle in.
// Failures are raised into the thread's finally handler as the runtime's ops raise theirs:
// ETIMEDOUT (connect or response deadline), ECONNREFUSED/ECONNRESET... (the socket), EPROTO (a
// malformed response), ECONNABORTED (the server closed the connection before or in the middle
// of an expected response), EPIPE (send() after the server said Connection: close), EBUSY (more
// than kMaxOutstanding requests outstanding). explain() turns the raised error into one line
// saying which response failed and why.
//
// Nothing is allocated per request: the rings come from the process's micro-heap once, the
// parser's header index is fixed-size, and the request is written straight into the send ring.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "net/http/limits.h"
#include "net/http/response_parser.h"
#include "net/socket.h"
#include "runtime/error.h"
#include "runtime/thread.h"

namespace mnv::http {

struct ClientOptions {
  std::string_view host = "localhost";  // the Host field's value (the caller's storage)
  std::int64_t connect_timeout_ns = 5'000'000'000;
  // From the start of a receive() to the last byte of its response; 0: none.
  std::int64_t response_timeout_ns = 10'000'000'000;
  Limits limits;
  // Room to read a response head that straddles the receive ring's wrap (pipelined responses
  // do, now and then): at least the longest head expected. Without it such a head fails
  // (EPROTO, explained).
  std::span<char> scratch;
};

struct Request {
  std::string_view method = "GET";
  std::string_view target = "/";
  std::string_view fields;  // extra header lines, each "Name: value\r\n" (the caller's)
  std::string_view body;    // sent with Content-Length (also 0 for an empty POST or PUT)
};

struct Response {
  int status = 0;
  bool keep_alive = true;        // false: the server closes after this response
  std::uint64_t body_size = 0;   // decoded body bytes, all of them
  std::size_t body_copied = 0;   // of which fitted into receive()'s buffer (the first ones)
};

class Client {
 public:
  static constexpr std::uint32_t kMaxOutstanding = 256;

  explicit Client(const ClientOptions& options);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Opens the connection (ClientOptions::connect_timeout_ns).
  Task<> connect(const sockaddr* addr, socklen_t len);
  // Buffers one request (sent by flush(), or by the next receive() that waits).
  Task<> send(const Request& r);
  // Sends every buffered request.
  Task<> flush();
  // Reads the next response in order: its status and framing, and its body, the first
  // body.size() bytes of which are copied into `body` (the rest is read and dropped).
  Task<Response> receive(std::span<char> body = {});
  // The same, but gives up waiting at the monotonic time `wake_at` (0: never) without losing
  // anything: false then, and the next call goes on where this one stopped (an open-loop load
  // generator reads responses between scheduled sends this way). True with *out filled in once
  // the response is complete. The response's deadline still runs from the first call.
  Task<bool> receive_until(std::int64_t wake_at, Response* out, std::span<char> body = {});

  // Requests sent (or buffered) whose response has not been received.
  std::uint32_t outstanding() const { return static_cast<std::uint32_t>(sent_ - received_); }
  // Responses received so far on this connection.
  std::uint64_t received() const { return received_; }
  // The server said Connection: close (or closed): no more requests can be sent.
  bool closed() const { return closed_; }
  Socket& socket() { return s_; }

  // One line describing `e` (a raised error) for this connection: what was being done, which
  // response, and the cause. Writes into buf and returns it.
  const char* explain(const mnv::Error& e, char* buf, std::size_t len) const;

 private:
  enum class Phase : std::uint8_t { kIdle, kConnecting, kSending, kHead, kBody };
  // Records why the next raise happens (explain() reports it).
  void note(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
  bool head_request(std::uint64_t index) const {
    return (head_bits_[index % kMaxOutstanding / 64] >> (index % 64)) & 1;
  }

  ClientOptions opt_;
  Socket s_;
  ResponseParser parser_;
  std::uint64_t sent_ = 0;
  std::uint64_t received_ = 0;
  std::uint64_t head_bits_[kMaxOutstanding / 64] = {};  // which outstanding requests are HEAD
  std::int64_t deadline_ = 0;  // of the response being received
  Response cur_;               // the response being received
  bool in_progress_ = false;   // receive_until() stopped in the middle of cur_
  bool in_body_ = false;       // ... after its head
  Phase phase_ = Phase::kIdle;
  bool closed_ = false;
  char note_[192] = {};
};

}  // namespace mnv::http
