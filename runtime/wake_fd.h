// runtime/wake_fd.h — the eventfd that wakes a sleeping loop: open it, signal it, drain it.
//
// Every poller owns one (its wake() signals it, its wait() drains it), the signal handler of
// runtime/kernel.cc signals one for a thread that waits outside any kernel, and shards run as
// processes share one made before they fork. One helper for all of them, so the write that must
// be async-signal-safe (and leave errno alone) is written once.
#pragma once

namespace mnv {

// A new eventfd, or a duplicate of `shared` if >= 0 (non-blocking, close-on-exec). -1 with
// errno set on failure.
int open_wake_fd(int shared = -1);

// Adds one to the eventfd's counter, so a poll on it (or a concurrent one) returns.
// Async-signal-safe: one write(2), and errno is left as the interrupted code had it. A saturated
// counter (EAGAIN) means a wake is pending anyway.
void signal_wake_fd(int fd);

// Resets the counter after a wake was seen (non-blocking: nothing to read is fine).
void drain_wake_fd(int fd);

}  // namespace mnv
