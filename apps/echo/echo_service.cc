#include "apps/echo/echo_service.h"

#include <cerrno>
#include <cstring>

#include "mem/page.h"

#include "net/io.h"
#include "runtime/fault_injection.h"
#include "runtime/raise.h"

namespace mnv::echo {

bool g_fault_injection = false;

namespace {

bool is(const char* line, std::size_t n, const char* word) {
  std::size_t w = std::strlen(word);
  return (n == w || (n == w + 1 && line[w] == '\n')) && std::memcmp(line, word, w) == 0;
}

// Writes "Line N: " into p (at least 32 bytes); returns its length.
std::size_t line_prefix(char* p, std::size_t n) {
  char digits[20];
  std::size_t d = 0;
  do {
    digits[d++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  std::memcpy(p, "Line ", 5);
  std::size_t len = 5;
  while (d > 0) p[len++] = digits[--d];
  p[len++] = ':';
  p[len++] = ' ';
  return len;
}

}  // namespace

Task<> serve(Accepted& conn) {
  Socket& s = default_socket();
  for (std::size_t i = 0;; ++i) {
    if (!co_await readable()) break;  // input ended with nothing left: done
    char prefix[32];
    std::size_t prefix_len = line_prefix(prefix, i);
    // The common case: the whole line is already in the receive ring. It goes straight to the
    // send ring, with no line buffer and no copy of its own (and, when the send ring has room,
    // without an op). With fault injection every line takes the buffered path below, which
    // checks for faults.
    if (std::size_t n = g_fault_injection ? 0 : s.rx().line_length(kMaxLine); n > 0) {
      if (!try_write(s, prefix, prefix_len)) co_await write(prefix, prefix_len);
      if (!try_splice(s, s, n)) co_await splice(s, s, n);
      continue;
    }
    // A line still arriving, longer than the ring, or cut short by the end of the input: read it
    // into a line buffer, as the seed does.
    char* line = static_cast<char*>(this_process().heap().allocate(kMaxLine + 1));
    if (line == nullptr) {
      co_await raise(ENOMEM);
      break;
    }
    std::size_t n = co_await readline(line, kMaxLine);
    if (g_fault_injection && n > 0 && line[0] == '!') {
      if (is(line, n, "!segv")) null_dereference();
      if (is(line, n, "!fpe")) divide_by_zero();
      if (is(line, n, "!hang")) spin_forever();
      if (is(line, n, "!oom")) {
        while (this_process().heap().allocate(kPageSize) != nullptr) {
        }
        co_await raise(ENOMEM);
      }
    }
    if (n > 0) {
      co_await write(prefix, prefix_len);
      co_await write(line, n);
    }
    Heap::owner(line)->free(line);
    if (n == 0) break;
  }
}

}  // namespace mnv::echo
