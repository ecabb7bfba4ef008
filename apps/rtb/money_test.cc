// apps/rtb/money_test.cc — exact decimal text <-> micro-units.
#include "apps/rtb/money.h"

#include <gtest/gtest.h>

#include <string>

namespace mnv::rtb {
namespace {

Micros parse(std::string_view s) {
  Micros m = -1;
  EXPECT_TRUE(parse_decimal_micros(s, &m)) << s;
  return m;
}

TEST(Money, ParsesDecimalsExactly) {
  EXPECT_EQ(parse("0"), 0);
  EXPECT_EQ(parse("-0"), 0);
  EXPECT_EQ(parse("2"), 2'000'000);
  EXPECT_EQ(parse("0.29"), 290'000);  // 0.29 * 1e6 in doubles is 290000.00000000006
  EXPECT_EQ(parse("0.03"), 30'000);
  EXPECT_EQ(parse("3.5"), 3'500'000);
  EXPECT_EQ(parse("0.000001"), 1);
  EXPECT_EQ(parse("1.5e-1"), 150'000);
  EXPECT_EQ(parse("3E2"), 300'000'000);
  EXPECT_EQ(parse("12.340000"), 12'340'000);
  EXPECT_EQ(parse("1000000"), kMaxCpmMicros);
}

TEST(Money, RoundsUpPastTheSixthDecimal) {
  EXPECT_EQ(parse("0.0000001"), 1);
  EXPECT_EQ(parse("1.0000001"), 1'000'001);
  EXPECT_EQ(parse("1.0000000"), 1'000'000);
  EXPECT_EQ(parse("1e-20"), 1);
}

TEST(Money, RefusesNegativesNonNumbersAndHugeAmounts) {
  Micros m = 0;
  for (const char* s : {"-1", "-0.5", "", "1.", ".5", "abc", "1e", "1x", "1000000.000001", "1e30", "--1", "+1"}) {
    EXPECT_FALSE(parse_decimal_micros(s, &m)) << s;
  }
}

TEST(Money, FormatsTheShortestExactDecimal) {
  char buf[32];
  auto fmt = [&](Micros m) { return std::string(buf, format_decimal_micros(m, buf, sizeof buf)); };
  EXPECT_EQ(fmt(0), "0");
  EXPECT_EQ(fmt(2'500'000), "2.5");
  EXPECT_EQ(fmt(1), "0.000001");
  EXPECT_EQ(fmt(290'000), "0.29");
  EXPECT_EQ(fmt(3'000'000), "3");
  EXPECT_EQ(fmt(kMaxCpmMicros), "1000000");
  EXPECT_EQ(format_decimal_micros(2'500'000, buf, 2), 0u);  // "2.5" does not fit in 2
  for (Micros m : {Micros{1}, Micros{999'999}, Micros{1'234'567}, Micros{42'000'001}}) {
    EXPECT_EQ(parse(fmt(m)), m);
  }
}

TEST(Money, ConvertsRoundingUp) {
  EXPECT_EQ(convert_micros(400'000, 1'080'000), 432'000);  // 0.40 EUR at 1.08 USD
  EXPECT_EQ(convert_micros(1, 1'500'000), 2);              // 1.5 micros rounds up
  EXPECT_EQ(convert_micros(kMaxCpmMicros, 2'000'000), kMaxCpmMicros);
}

}  // namespace
}  // namespace mnv::rtb
