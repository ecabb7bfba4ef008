// mem/log.h — one-line diagnostics to stderr that never allocate.
//
// The runtime logs from paths where the global heap is off limits (exhausted micro-heaps, signal
// recovery), so a log line is formatted into a stack buffer and written with one write(2).
#pragma once

#include <cstdarg>

namespace mnv {

// printf-style; a newline is appended. Lines longer than 1 KiB are truncated.
void log_line(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void vlog_line(const char* fmt, va_list args);

// Logs and aborts: an invariant of the runtime itself is broken.
[[noreturn]] void panic(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace mnv

// Invariant check that stays on in optimized builds (TigerStyle: assert every invariant).
#define MNV_ASSERT(cond)                                                                      \
  do {                                                                                        \
    if (__builtin_expect(!(cond), 0)) ::mnv::panic("%s:%d: assertion failed: %s", __FILE__, \
                                                   __LINE__, #cond);                          \
  } while (0)
