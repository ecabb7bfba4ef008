// apps/rtb/hex.h — fixed-width lower-case hex, for the ids the bidder writes on its hot paths
// (notice URLs, frequency cap keys in Redis) without snprintf.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mnv::rtb {

inline constexpr char kHexDigits[] = "0123456789abcdef";

// v as exactly 16 hex digits at p (no NUL); returns 16.
inline std::size_t put_hex64(char* p, std::uint64_t v) {
  for (int i = 15; i >= 0; --i) {
    p[i] = kHexDigits[v & 15];
    v >>= 4;
  }
  return 16;
}

}  // namespace mnv::rtb
