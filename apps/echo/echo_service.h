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

// Chaos testing from outside the process (off by default; apps/echo --fault_injection): a line
// "!segv", "!fpe" or "!oom" makes that connection's handler dereference a null pointer, divide
// an integer by zero, or exhaust its micro-heap, so containment can be shown on a live server.
extern bool g_fault_injection;

Task<> serve(Accepted& conn);

}  // namespace mnv::echo
