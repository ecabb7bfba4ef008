// runtime/error.h — what a raised error carries.
//
// Errors are errno-style codes (ECONNRESET, ETIMEDOUT, ENOMEM, EFAULT...), never C++ exceptions:
// resets and timeouts are routine at scale. A raise records where it happened; a hardware trap
// also records the signal and faulting address; ENOMEM records the page budget that would have
// sufficed, so heap sizes can be set from the log.
#pragma once

#include <cstddef>
#include <cstdint>
#include <source_location>

namespace mnv {

struct Error {
  int code = 0;                    // errno value; 0 means no error
  int signo = 0;                   // hardware trap signal (with code EFAULT), else 0
  std::uintptr_t address = 0;      // faulting address for a trap
  std::size_t needed_pages = 0;    // for ENOMEM from a micro-heap: pages that would have sufficed
  std::source_location where{};    // the raise (or the op that raised)

  explicit operator bool() const { return code != 0; }
  // One line, e.g. "ECONNRESET (Connection reset by peer) at net/socket.cc:120".
  // Writes into buf and returns it.
  const char* describe(char* buf, std::size_t len) const;
};

}  // namespace mnv
