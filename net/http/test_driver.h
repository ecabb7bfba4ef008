// net/http/test_driver.h — (tests, fuzzer) runs a byte stream through a parser the way a server
// or client would: bytes arrive in pieces of given sizes into a ring (test_ring.h), the parser
// reads the ring in place, the driver copies out each message's fields and body and consumes.
// Feeding the same stream whole, byte by byte, or split anywhere, across the ring's wrap or not,
// must give the same messages.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "net/http/request_parser.h"
#include "net/http/response_parser.h"
#include "net/http/test_ring.h"

namespace mnv::http::testing {

struct Message {
  std::string method;  // requests
  std::string target;
  int status = 0;      // responses
  std::string reason;
  int version_major = 1;
  int version_minor = 1;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = false;
  bool expect_continue = false;
  Framing framing = Framing::kNone;
  bool operator==(const Message&) const = default;
};

struct Outcome {
  std::vector<Message> messages;  // complete ones
  Error error = Error::kNone;     // why the stream stopped, if it did
  std::size_t error_at = 0;       // where (offset in the stream): the parser's error_offset()
  bool partial = false;           // the stream ended inside a message
  bool operator==(const Outcome&) const = default;
};

// Piece sizes: next_piece(i) is the size of the i-th piece fed (>= 1).
using PieceFn = std::function<std::size_t(std::size_t)>;
inline PieceFn whole() { return [](std::size_t) { return static_cast<std::size_t>(-1) / 2; }; }
inline PieceFn bytewise() { return [](std::size_t) { return std::size_t{1}; }; }
inline PieceFn split_at(std::size_t k) {
  return [k](std::size_t i) { return i == 0 ? (k == 0 ? std::size_t{1} : k) : static_cast<std::size_t>(-1) / 2; };
}

struct DriveOptions {
  std::size_t ring_capacity = 1 << 16;
  std::size_t ring_start = 0;
  Limits limits;
  bool head_requests = false;  // (responses) each answers a HEAD request
};

inline void copy_headers(const HeaderList& h, Message& m) {
  for (std::size_t i = 0; i < h.size(); ++i) {
    m.headers.emplace_back(std::string(h[i].name), std::string(h[i].value));
  }
}

// P is RequestParser or ResponseParser.
template <typename P>
Outcome drive(std::string_view input, const PieceFn& next_piece, const DriveOptions& opt = {}) {
  Outcome out;
  TestRing ring(opt.ring_capacity, opt.ring_start);
  P parser(opt.limits);
  std::vector<char> scratch(opt.limits.max_head);
  std::size_t fed = 0, piece = 0;
  std::size_t base = 0;  // stream offset of the ring's first byte
  bool in_head = true;
  Message m;
  if constexpr (std::is_same_v<P, ResponseParser>) {
    if (opt.head_requests) parser.expect_no_body();
  }
  auto feed = [&]() -> bool {
    if (fed == input.size() || ring.space() == 0) return false;
    std::size_t n = next_piece(piece++);
    fed += ring.write(input.substr(fed, n));
    return true;
  };
  for (;;) {
    bool progress = false;
    if (in_head) {
      HeadStatus st = parser.parse_head(ring.data());
      if (st == HeadStatus::kNeedScratch) st = parser.parse_head(ring.data(), scratch);
      if (st == HeadStatus::kError) {
        out.error = parser.error();
        out.error_at = base + parser.error_offset();
        return out;
      }
      if (st == HeadStatus::kComplete) {
        m = Message();
        const auto& h = parser.head();
        if constexpr (std::is_same_v<P, RequestParser>) {
          m.method = std::string(h.method_name);
          m.target = std::string(h.target);
          m.expect_continue = h.expect_continue;
        } else {
          m.status = h.status;
          m.reason = std::string(h.reason);
        }
        m.version_minor = h.version_minor;
        m.keep_alive = h.keep_alive;
        m.framing = h.framing;
        copy_headers(h.headers, m);
        ring.consume(parser.head_size());
        base += parser.head_size();
        in_head = false;
        progress = true;
      }
    } else {
      BodyStep s = parser.parse_body(ring.data());
      if (s.error != Error::kNone) {
        out.error = s.error;
        out.error_at = base + s.consumed;
        return out;
      }
      m.body.append(s.data);
      ring.consume(s.consumed);
      base += s.consumed;
      progress = s.consumed > 0;
      if (s.done) {
        out.messages.push_back(std::move(m));
        parser.reset();
        if constexpr (std::is_same_v<P, ResponseParser>) {
          if (opt.head_requests) parser.expect_no_body();
        }
        in_head = true;
        progress = true;
      }
    }
    if (!progress && !feed()) break;
  }
  if constexpr (std::is_same_v<P, ResponseParser>) {
    if (!in_head) {  // the connection closed
      BodyStep s = parser.finish();
      if (s.done) {
        out.messages.push_back(std::move(m));
        return out;
      }
    }
  }
  out.partial = !in_head || ring.size() > 0;
  return out;
}

}  // namespace mnv::http::testing
