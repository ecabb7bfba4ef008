// net/http/limits.h — the HTTP parsers' size limits (the `[http]` config table sets them).
#pragma once

#include <cstdint>

namespace mnv::http {

struct Limits {
  // The most header fields one message may have (a HeaderList's fixed capacity): a parser's
  // header index is fixed-size, so it allocates nothing per request.
  static constexpr std::uint32_t kMaxHeaderCapacity = 64;

  std::uint32_t max_target = 4096;  // request-target bytes; over it: 414
  std::uint32_t max_head = 8192;    // request line + header fields + blank line; over it: 431
  std::uint32_t max_headers = 64;   // header fields (at most kMaxHeaderCapacity); over it: 431
  std::uint64_t max_body = 1u << 20;  // decoded body bytes (also the trailer section); over it: 413
};

}  // namespace mnv::http
