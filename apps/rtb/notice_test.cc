// Tests of apps/rtb/notice.h: the MAC is HMAC-SHA256 (checked against OpenSSL's own HMAC()),
// a genuine notice verifies in any key order, every altered field, another kind's URL, another
// key and a forged MAC are refused, missing fields are malformed, prices parse (empty and AUDIT
// are no price), and signing plus verifying allocates nothing.
#include "apps/rtb/notice.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

#include "runtime/global_alloc_counter.h"

namespace mnv::rtb {
namespace {

NoticeFields sample() {
  NoticeFields f;
  f.shard = 1;
  f.seq = 1733301234567;
  f.slot = 12;
  f.bid_cpm = 2'500'000;
  f.user = 0x9f3c0a1122334455ull;
  f.test = false;
  return f;
}

std::string query(const NoticeSigner& s, NoticeKind k, const NoticeFields& f) {
  char buf[NoticeSigner::kMaxQuery];
  std::size_t n = s.write_query(k, f, buf, sizeof buf);
  EXPECT_GT(n, 0u);
  return std::string(buf, n);
}

TEST(NoticeTest, TheMacIsHmacSha256OfTheKindAndFields) {
  std::string key = "a secret key from the config";
  NoticeSigner s(key);
  std::string q = query(s, NoticeKind::kWin, sample());
  EXPECT_EQ(q.substr(0, q.find("&s=")), "b=1-1733301234567&c=12&p=2500000&u=9f3c0a1122334455&t=0");
  std::string text = "w|1|1733301234567|12|2500000|9f3c0a1122334455|0";
  unsigned char md[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(text.data()),
       text.size(), md, &len);
  std::string hex;
  for (int i = 0; i < 16; ++i) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", md[i]);
    hex += b;
  }
  EXPECT_EQ(q.substr(q.find("&s=") + 3), hex);
  // A key longer than SHA-256's block is hashed first, as RFC 2104 says.
  std::string long_key(100, 'k');
  NoticeSigner l(long_key);
  std::string lq = query(l, NoticeKind::kWin, sample());
  HMAC(EVP_sha256(), long_key.data(), static_cast<int>(long_key.size()),
       reinterpret_cast<const unsigned char*>(text.data()), text.size(), md, &len);
  char first[3];
  std::snprintf(first, sizeof first, "%02x", md[0]);
  EXPECT_EQ(lq.substr(lq.find("&s=") + 3, 2), first);
}

TEST(NoticeTest, AGenuineNoticeVerifiesAndAnAlteredOneIsRefused) {
  NoticeSigner s("k1");
  NoticeFields f = sample();
  std::string q = query(s, NoticeKind::kBill, f) + "&price=1.25";
  NoticeFields got;
  std::string_view price;
  ASSERT_EQ(s.verify(NoticeKind::kBill, q, &got, &price), NoticeCheck::kOk);
  EXPECT_EQ(got.shard, 1u);
  EXPECT_EQ(got.seq, f.seq);
  EXPECT_EQ(got.slot, 12u);
  EXPECT_EQ(got.bid_cpm, 2'500'000);
  EXPECT_EQ(got.user, f.user);
  EXPECT_FALSE(got.test);
  EXPECT_EQ(price, "1.25");
  // Keys in another order, an unknown key: still genuine.
  std::string reordered = "price=1.25&x=y&" + q.substr(q.find("c=")) + "&" + q.substr(0, q.find("&c="));
  EXPECT_EQ(s.verify(NoticeKind::kBill, reordered, &got, &price), NoticeCheck::kOk);

  // Another kind's URL (a win replayed as a loss), another key, each field changed.
  EXPECT_EQ(s.verify(NoticeKind::kLoss, q, &got, &price), NoticeCheck::kForged);
  EXPECT_EQ(NoticeSigner("k2").verify(NoticeKind::kBill, q, &got, &price), NoticeCheck::kForged);
  for (auto [from, to] : {std::pair<std::string, std::string>{"b=1-", "b=0-"}, {"c=12", "c=13"},
                          {"p=2500000", "p=9500000"}, {"u=9f3c", "u=8f3c"}, {"t=0", "t=1"}}) {
    std::string bad = q;
    bad.replace(bad.find(from), from.size(), to);
    EXPECT_EQ(s.verify(NoticeKind::kBill, bad, &got, &price), NoticeCheck::kForged) << from << " -> " << to;
  }
  std::string mac = q;
  std::size_t at = mac.find("&s=") + 3;
  mac[at] = mac[at] == '0' ? '1' : '0';
  EXPECT_EQ(s.verify(NoticeKind::kBill, mac, &got, &price), NoticeCheck::kForged);
  // Missing or broken fields.
  EXPECT_EQ(s.verify(NoticeKind::kBill, "", &got, &price), NoticeCheck::kMalformed);
  EXPECT_EQ(s.verify(NoticeKind::kBill, q.substr(q.find("&c=") + 1), &got, &price), NoticeCheck::kMalformed);
  std::string nan = q;
  nan.replace(nan.find("p=2500000"), 9, "p=abc");
  EXPECT_EQ(s.verify(NoticeKind::kBill, nan, &got, &price), NoticeCheck::kMalformed);
  std::string short_mac = q.substr(0, q.find("&price") - 1) + "&price=1";
  EXPECT_EQ(s.verify(NoticeKind::kBill, short_mac, &got, &price), NoticeCheck::kMalformed);
}

TEST(NoticeTest, PricesParseAndAuditOrEmptyIsNoPrice) {
  Micros cpm = -1;
  bool bad = true;
  EXPECT_TRUE(parse_price("1.25", &cpm, &bad));
  EXPECT_EQ(cpm, 1'250'000);
  EXPECT_FALSE(bad);
  cpm = -1;
  EXPECT_FALSE(parse_price("", &cpm, &bad));
  EXPECT_FALSE(bad);
  EXPECT_FALSE(parse_price("AUDIT", &cpm, &bad));
  EXPECT_FALSE(bad);
  EXPECT_FALSE(parse_price("${AUCTION_PRICE}", &cpm, &bad));  // not substituted: no price
  EXPECT_FALSE(bad);
  EXPECT_EQ(cpm, -1);
  EXPECT_FALSE(parse_price("-1", &cpm, &bad));
  EXPECT_TRUE(bad);
  EXPECT_FALSE(parse_price("one", &cpm, &bad));
  EXPECT_TRUE(bad);
}

TEST(NoticeTest, SigningAndVerifyingAllocateNothing) {
  NoticeSigner s("key");
  NoticeFields f = sample(), got;
  char buf[NoticeSigner::kMaxQuery];
  std::string_view price;
  long before = global_allocations();
  for (int i = 0; i < 10'000; ++i) {
    f.seq = static_cast<std::uint64_t>(i) + 1;
    std::size_t n = s.write_query(NoticeKind::kWin, f, buf, sizeof buf);
    ASSERT_EQ(s.verify(NoticeKind::kWin, std::string_view(buf, n), &got, &price), NoticeCheck::kOk);
  }
  EXPECT_EQ(global_allocations() - before, 0);
}

}  // namespace
}  // namespace mnv::rtb
