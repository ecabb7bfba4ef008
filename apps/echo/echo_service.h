// apps/echo/echo_service.h — the seed's echo service as a connection handler.
//
// Each line is answered with "Line N: <line>", N counting from 0 per connection; a line of up
// to 8191 bytes is answered whole (the seed's 8 KiB buffer), a longer one in 8191-byte pieces.
// A line that is already whole in the socket's receive ring is moved straight into the send
// ring; only a line that is still arriving (or longer than the ring) is read into a line buffer,
// allocated from the micro-heap for that line and freed after it as in the seed, so an idle
// connection holds none.
#pragma once

#include "net/service.h"

namespace mnv::echo {

inline constexpr std::size_t kMaxLine = 8191;

// Chaos testing from outside the process (off by default; apps/echo --fault_injection): a line
// "!segv", "!fpe" or "!oom" makes that connection's handler dereference a null pointer, divide
// an integer by zero, or exhaust its micro-heap, so containment can be shown on a live server.
// "!hang" makes it spin forever without yielding: the runaway clock traps it after max_run_ms
// of CPU time. With that limit off it holds its whole shard, as a runaway handler does in any
// cooperative scheduler: a shard process is then killed as stuck and restarted (shard/shard.h),
// and on SIGTERM the server still exits by the end of grace_ms (shard/server.h).
extern bool g_fault_injection;

Task<> serve(Accepted& conn);

}  // namespace mnv::echo
