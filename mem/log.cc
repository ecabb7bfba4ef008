#include "mem/log.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "mem/page.h"

namespace mnv {

void vlog_line(const char* fmt, va_list args) {
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof(buf) - 1, fmt, args);
  if (n < 0) return;
  if (n > static_cast<int>(sizeof(buf)) - 2) n = sizeof(buf) - 2;
  buf[n++] = '\n';
  ssize_t off = 0;
  while (off < n) {
    ssize_t w = ::write(STDERR_FILENO, buf + off, n - off);
    if (w <= 0) return;
    off += w;
  }
}

void log_line(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vlog_line(fmt, args);
  va_end(args);
}

void panic(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vlog_line(fmt, args);
  va_end(args);
  std::abort();
}

void check_page_size() {
  long os = ::sysconf(_SC_PAGESIZE);
  if (os != static_cast<long>(kPageSize)) panic("mnv: OS page size %ld, built for %zu", os, kPageSize);
}

}  // namespace mnv
