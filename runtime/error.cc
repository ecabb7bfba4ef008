#include "runtime/error.h"

#include <cstdio>
#include <cstring>

#include "runtime/trap.h"

namespace mnv {

const char* Error::describe(char* buf, std::size_t len) const {
  if (signo != 0) {
    std::snprintf(buf, len, "EFAULT: %s at address %#lx", describe_signal(signo), static_cast<unsigned long>(address));
    return buf;
  }
  const char* name = strerrorname_np(code);
  int n = std::snprintf(buf, len, "%s (%s) at %s:%u", name != nullptr ? name : "?", strerrordesc_np(code),
                        where.file_name(), static_cast<unsigned>(where.line()));
  if (n > 0 && static_cast<std::size_t>(n) < len && needed_pages != 0) {
    std::snprintf(buf + n, len - n, ", heap needs %zu pages", needed_pages);
  }
  return buf;
}

}  // namespace mnv
