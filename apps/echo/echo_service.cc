#include "apps/echo/echo_service.h"

#include <cerrno>

#include "net/io.h"
#include "runtime/raise.h"

namespace mnv::echo {

Task<> serve(Accepted& conn) {
  for (std::size_t i = 0;; ++i) {
    if (!co_await readable()) break;  // input ended with nothing left: done
    char* line = static_cast<char*>(this_process().heap().allocate(kMaxLine + 1));
    if (line == nullptr) {
      co_await raise(ENOMEM);
      break;
    }
    std::size_t n = co_await readline(line, kMaxLine);
    if (n > 0) {
      co_await printf("Line %zu: ", i);
      co_await write(line, n);
    }
    Heap::owner(line)->free(line);
    if (n == 0) break;
  }
}

}  // namespace mnv::echo
