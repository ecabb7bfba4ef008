// runtime/clock.h — the one clock the runtime's deadlines are on: CLOCK_MONOTONIC, in ns.
#pragma once

#include <cstdint>

namespace mnv {

std::int64_t monotonic_ns();

}  // namespace mnv
