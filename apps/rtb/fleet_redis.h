// apps/rtb/fleet_redis.h — how the bidder's Redis users (the budget lease keeper, the frequency
// caps' thread) set up their connections: one deadline for connecting and for every call, and a
// reconnect back-off from 10 ms to 500 ms (a Redis that is back is found within half a second).
#pragma once

#include <cstdint>

#include "redis/connection.h"

namespace mnv::rtb {

inline redis::ConnectionOptions fleet_connection_options(std::int64_t call_timeout_ns) {
  redis::ConnectionOptions co;
  co.connect_timeout_ns = call_timeout_ns;
  co.call_timeout_ns = call_timeout_ns;
  co.backoff_min_ns = 10'000'000;
  co.backoff_max_ns = 500'000'000;
  return co;
}

}  // namespace mnv::rtb
