// net/http/date.cc — IMF-fixdate by hand (strftime depends on the locale).
#include "net/http/date.h"

#include <time.h>

namespace mnv::http {
namespace {

void two(char* p, int v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

}  // namespace

void format_imf_fixdate(std::time_t t, char out[kImfFixdateSize]) {
  static const char kDays[] = "SunMonTueWedThuFriSat";
  static const char kMonths[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  struct tm tm;
  gmtime_r(&t, &tm);
  char* p = out;
  for (int i = 0; i < 3; ++i) *p++ = kDays[tm.tm_wday * 3 + i];
  *p++ = ',';
  *p++ = ' ';
  two(p, tm.tm_mday);
  p += 2;
  *p++ = ' ';
  for (int i = 0; i < 3; ++i) *p++ = kMonths[tm.tm_mon * 3 + i];
  *p++ = ' ';
  int year = tm.tm_year + 1900;
  if (year < 0) year = 0;
  if (year > 9999) year = 9999;
  two(p, year / 100);
  two(p + 2, year % 100);
  p += 4;
  *p++ = ' ';
  two(p, tm.tm_hour);
  p += 2;
  *p++ = ':';
  two(p, tm.tm_min);
  p += 2;
  *p++ = ':';
  two(p, tm.tm_sec);
  p += 2;
  *p++ = ' ';
  *p++ = 'G';
  *p++ = 'M';
  *p++ = 'T';
}

bool HttpDate::set(std::time_t t) {
  if (t == t_) return false;
  t_ = t;
  format_imf_fixdate(t, buf_);
  return true;
}

bool HttpDate::refresh() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return set(ts.tv_sec);
}

}  // namespace mnv::http
