// net/http/date_test.cc — IMF-fixdate formatting and the once-per-second cache.
#include "net/http/date.h"

#include <gtest/gtest.h>

#include <ctime>
#include <string>

namespace mnv::http {
namespace {

TEST(HttpDateTest, FormatsImfFixdate) {
  char buf[kImfFixdateSize];
  format_imf_fixdate(784111777, buf);  // RFC 9110's example
  EXPECT_EQ(std::string(buf, sizeof buf), "Sun, 06 Nov 1994 08:49:37 GMT");
  format_imf_fixdate(0, buf);
  EXPECT_EQ(std::string(buf, sizeof buf), "Thu, 01 Jan 1970 00:00:00 GMT");
  format_imf_fixdate(951782400, buf);  // a leap day
  EXPECT_EQ(std::string(buf, sizeof buf), "Tue, 29 Feb 2000 00:00:00 GMT");
}

TEST(HttpDateTest, ReformatsOnlyWhenTheSecondChanges) {
  HttpDate d;
  EXPECT_TRUE(d.set(784111777));
  EXPECT_FALSE(d.set(784111777));
  EXPECT_EQ(d.value(), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_TRUE(d.set(784111778));
  EXPECT_EQ(d.value(), "Sun, 06 Nov 1994 08:49:38 GMT");
}

TEST(HttpDateTest, RefreshReadsTheClock) {
  HttpDate d;
  d.refresh();
  std::time_t now = std::time(nullptr);
  EXPECT_LE(now - d.seconds(), 1);  // the coarse clock may lag by a tick
  EXPECT_GE(now - d.seconds(), -1);
  EXPECT_EQ(d.value().substr(26), "GMT");
}

}  // namespace
}  // namespace mnv::http
