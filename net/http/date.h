// net/http/date.h — the Date header's value (IMF-fixdate), formatted at most once per second.
//
// A shard keeps one HttpDate and calls refresh() once per loop turn (or per response): it reads
// the coarse realtime clock and reformats only when the second has changed, so a response copies
// 29 ready bytes. format_imf_fixdate() is the formatter alone (no locale, no allocation).
#pragma once

#include <cstddef>
#include <ctime>
#include <string_view>

namespace mnv::http {

// Writes e.g. "Sun, 06 Nov 1994 08:49:37 GMT" (exactly kImfFixdateSize bytes, no NUL) for a time
// in seconds since the epoch.
inline constexpr std::size_t kImfFixdateSize = 29;
void format_imf_fixdate(std::time_t t, char out[kImfFixdateSize]);

class HttpDate {
 public:
  HttpDate() { set(0); }

  // Reads CLOCK_REALTIME_COARSE; reformats when its second differs from the cached one.
  // Returns whether it reformatted.
  bool refresh();
  // For tests and callers that already know the time: formats if `t` differs.
  bool set(std::time_t t);

  std::string_view value() const { return std::string_view(buf_, kImfFixdateSize); }
  std::time_t seconds() const { return t_; }

 private:
  std::time_t t_ = -1;
  char buf_[kImfFixdateSize];
};

}  // namespace mnv::http
