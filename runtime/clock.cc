// runtime/clock.cc — CLOCK_MONOTONIC in nanoseconds (see clock.h).
#include "runtime/clock.h"

#include <time.h>

namespace mnv {

std::int64_t monotonic_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace mnv
