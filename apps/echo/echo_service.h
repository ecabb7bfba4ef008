// apps/echo/echo_service.h — the seed's echo service as a connection handler.
//
// Each line is answered with "Line N: <line>", N counting from 0 per connection; a line of up
// to 8191 bytes is answered whole (the seed's 8 KiB buffer). As in the seed, the line buffers
// are allocated from the micro-heap for each line and freed after it, so an idle connection
// holds none of them.
#pragma once

#include "net/service.h"

namespace mnv::echo {

inline constexpr std::size_t kMaxLine = 8191;

Task<> serve(Accepted& conn);

}  // namespace mnv::echo
