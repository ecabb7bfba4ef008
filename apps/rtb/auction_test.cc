// apps/rtb/auction_test.cc — the hand-written requests against the sample campaigns pick the
// campaigns the rules say, in price order; each no-bid reason; the index's limits; no allocation.
#include "apps/rtb/auction.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "apps/rtb/bid_request_parser.h"
#include "apps/rtb/testdata.h"
#include "runtime/global_alloc_counter.h"

namespace mnv::rtb {
namespace {

std::shared_ptr<const CampaignIndex> sample() {
  CampaignSet set;
  std::string error;
  EXPECT_TRUE(load_campaigns("apps/rtb/campaigns.toml", &set, &error)) << error;
  return CampaignIndex::build(std::move(set));
}

class AuctionTest : public ::testing::Test {
 protected:
  // Parses `name` (a testdata file) or JSON text and runs the auction on it.
  void run_file(std::string_view name) { run_body(testdata(name)); }
  void run_text(std::string_view text) { run_body(padded(text)); }
  void run_body(PaddedBody body) {
    body_ = std::move(body);
    ParseResult r = parser_.parse(body_.data(), body_.len, body_.capacity(), &req_);
    ASSERT_TRUE(r.ok()) << r.reason;
    run_auction(*index_, req_, &decision_);
  }
  // The campaign ids of impression i's candidates, in order.
  std::vector<std::string> ids(int i) {
    std::vector<std::string> out;
    for (const Candidate& c : decision_.imps[i].candidates) out.push_back(c.campaign->id);
    return out;
  }
  NoBidReason reason(int i) { return decision_.imps[i].reason; }

  std::shared_ptr<const CampaignIndex> index_ = sample();
  BidRequestParser parser_{16 * 1024};
  PaddedBody body_;
  BidRequest req_;
  Decision decision_;
};

using V = std::vector<std::string>;

TEST_F(AuctionTest, Banner) {
  run_file("banner.json");
  ASSERT_EQ(decision_.imps.size(), 1);
  // umbrella-games-mobile fits 300x250 but not devicetype 2; globex is not in the USA.
  EXPECT_EQ(ids(0), (V{"wayne-finance-premium", "acme-shoes-na", "massive-dynamic-run-of-network"}));
  const Candidate& best = decision_.imps[0].candidates[0];
  EXPECT_EQ(best.price, 4'000'000);
  EXPECT_TRUE(best.creative->crid == "wayne-300x250" || best.creative->crid == "wayne-300x600");
  EXPECT_EQ(decision_.imps[0].candidates[1].creative->crid, "acme-300x250");
  EXPECT_TRUE(decision_.any());
  EXPECT_EQ(decision_.reason(), NoBidReason::kNone);
}

TEST_F(AuctionTest, Video) {
  run_file("video.json");
  EXPECT_EQ(ids(0), (V{"stark-auto-video", "cyberdyne-video-global"}));
  EXPECT_EQ(decision_.imps[0].candidates[0].creative->type, CreativeType::kVideo);
}

TEST_F(AuctionTest, Native) {
  run_file("native.json");
  EXPECT_EQ(ids(0), (V{"vandelay-retail-native"}));  // hooli's native is for JPN, IND only
}

TEST_F(AuctionTest, App) {
  run_file("app.json");
  EXPECT_EQ(ids(0), (V{"acme-shoes-na", "umbrella-games-mobile", "massive-dynamic-run-of-network"}));
  EXPECT_EQ(decision_.imps[0].candidates[0].creative->crid, "acme-320x50");
}

TEST_F(AuctionTest, MultiImpWithAFloorInEuros) {
  run_file("multi_imp.json");
  ASSERT_EQ(decision_.imps.size(), 4);
  EXPECT_EQ(ids(0), (V{"initech-software-desktop"}));  // massive bids 0.80 < 1.20
  EXPECT_EQ(ids(1), (V{"globex-travel-eu", "massive-dynamic-run-of-network"}));  // 0.80 >= 0.80
  EXPECT_EQ(ids(2), (V{"globex-travel-eu", "massive-dynamic-run-of-network"}));  // 0.40 EUR = 0.432 USD
  EXPECT_EQ(ids(3), (V{"cyberdyne-video-global"}));  // 6.00 >= 6.00; stark is not in FRA
}

constexpr const char* kHead = R"({"id":"r","device":{"devicetype":2,"geo":{"country":"ZZZ"}},)";

TEST_F(AuctionTest, NoBidReasons) {
  run_text(std::string(kHead) + R"("cur":["EUR"],"imp":[{"id":"1","banner":{"w":300,"h":250}}]})");
  EXPECT_EQ(reason(0), NoBidReason::kCurrency);
  EXPECT_FALSE(decision_.any());
  EXPECT_EQ(decision_.reason(), NoBidReason::kCurrency);
  run_text(std::string(kHead) + R"("imp":[{"id":"1","banner":{"w":300,"h":250},"bidfloorcur":"XYZ"}]})");
  EXPECT_EQ(reason(0), NoBidReason::kCurrency);
  run_text(std::string(kHead) + R"("imp":[{"id":"1","banner":{"w":300,"h":250},"bidfloor":100}]})");
  EXPECT_EQ(reason(0), NoBidReason::kBelowFloor);
  run_text(std::string(kHead) + R"("imp":[{"id":"1","audio":{"mimes":["audio/mp4"]}}]})");
  EXPECT_EQ(reason(0), NoBidReason::kNoSlot);
  run_text(std::string(kHead) + R"("imp":[{"id":"1","banner":{"w":468,"h":60}}]})");
  EXPECT_EQ(reason(0), NoBidReason::kNoCampaign);
  // In no listed country, 160x600 leaves the catch-all (categories IAB3, adomain massive-dynamic).
  run_text(std::string(kHead) + R"("bcat":["IAB3"],"imp":[{"id":"1","banner":{"w":160,"h":600}}]})");
  EXPECT_EQ(reason(0), NoBidReason::kCategory);
  run_text(std::string(kHead) + R"("site":{"domain":"x.example.com","cat":["IAB26-2"]},)"
                                R"("imp":[{"id":"1","banner":{"w":160,"h":600}}]})");
  EXPECT_EQ(reason(0), NoBidReason::kCategory);  // it excludes IAB26
  run_text(std::string(kHead) + R"("badv":["massive-dynamic.example"],"imp":[{"id":"1","banner":{"w":160,"h":600}}]})");
  EXPECT_EQ(reason(0), NoBidReason::kAdvertiser);
  // 970x250 at a 1.00 floor: initech (1.60) wants personal computers, the catch-all bids 0.80.
  run_text(R"({"id":"r","device":{"devicetype":4},"imp":[{"id":"1","banner":{"w":970,"h":250},"bidfloor":1}]})");
  EXPECT_EQ(reason(0), NoBidReason::kDevice);
  EXPECT_EQ(no_bid_nbr(reason(0)), 6);
  // 300x600 in GBR at 3.00: wayne (4.00) only buys on its two sites; globex bids 2.20.
  run_text(R"({"id":"r","site":{"domain":"other.example.com"},"device":{"geo":{"country":"GBR"}},)"
           R"("imp":[{"id":"1","banner":{"w":300,"h":600},"bidfloor":3}]})");
  EXPECT_EQ(reason(0), NoBidReason::kSite);
  EXPECT_EQ(no_bid_nbr(reason(0)), 7);
  EXPECT_STREQ(no_bid_name(NoBidReason::kBelowFloor), "below_floor");
}

TEST_F(AuctionTest, VideoNeedsAMimeTheImpressionTakes) {
  run_text(R"({"id":"r","device":{"geo":{"country":"USA"}},"imp":[{"id":"1","video":{"mimes":["video/webm"]}}]})");
  EXPECT_EQ(reason(0), NoBidReason::kNoCampaign);
}

TEST_F(AuctionTest, SitesCoverSubdomainsAndAppsAreExact) {
  run_text(R"({"id":"r","app":{"bundle":"com.example.kids"},"device":{"devicetype":4,"geo":{"country":"BRA"}},)"
           R"("imp":[{"id":"1","banner":{"w":320,"h":50}}]})");
  EXPECT_EQ(ids(0), (V{"soylent-food-br", "massive-dynamic-run-of-network"}));  // umbrella excludes the kids app
  run_text(R"({"id":"r","site":{"domain":"eu.news.example.com"},"device":{"geo":{"country":"GBR"}},)"
           R"("imp":[{"id":"1","banner":{"w":728,"h":90}}]})");
  EXPECT_EQ(ids(0), (V{"wayne-finance-premium", "massive-dynamic-run-of-network"}));
}

// N campaigns for 300x250 everywhere, campaign i bidding `bid(i)`.
std::shared_ptr<const CampaignIndex> many(int n, Micros (*bid)(int)) {
  std::string text;
  for (int i = 0; i < n; ++i) {
    text += "[[campaign]]\nid = \"c" + std::to_string(i) + "\"\ntotal_budget_micros = 1000\ndaily_budget_micros = 1000\n";
    text += "bid_cpm_micros = " + std::to_string(bid(i)) + "\n";
    text += "[[campaign.creative]]\ncrid = \"k\"\ntype = \"banner\"\nw = 300\nh = 250\nadomain = [\"a.example\"]\nadm = \"x\"\n";
  }
  CampaignSet set;
  std::string error;
  EXPECT_TRUE(parse_campaigns(text, "many.toml", &set, &error)) << error;
  return CampaignIndex::build(std::move(set));
}

TEST_F(AuctionTest, AtMostKMaxCandidatesInPriceOrderTiesInFileOrder) {
  index_ = many(20, [](int i) -> Micros { return 1'000'000 + (i % 5) * 100'000; });
  run_text(R"({"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}]})");
  // Bids 1.4 (c4 c9 c14 c19), then 1.3 (c3 c8 c13 c18).
  EXPECT_EQ(ids(0), (V{"c4", "c9", "c14", "c19", "c3", "c8", "c13", "c18"}));
  EXPECT_EQ(decision_.imps[0].candidates.size(), kMaxCandidates);
}

TEST_F(AuctionTest, ExaminesAtMostKMaxExaminedPostings) {
  // 300 campaigns all blocked by bcat would otherwise be read to the end.
  std::string text;
  for (int i = 0; i < 300; ++i) {
    text += "[[campaign]]\nid = \"c" + std::to_string(i) + "\"\ntotal_budget_micros = 1000\ndaily_budget_micros = 1000\n";
    text += std::string("bid_cpm_micros = ") + (i == 299 ? "1" : "2000000") + "\ncategories = [\"" +
            (i == 299 ? "IAB1" : "IAB2") + "\"]\n";
    text += "[[campaign.creative]]\ncrid = \"k\"\ntype = \"banner\"\nw = 300\nh = 250\nadomain = [\"a.example\"]\nadm = \"x\"\n";
  }
  CampaignSet set;
  std::string error;
  ASSERT_TRUE(parse_campaigns(text, "t.toml", &set, &error)) << error;
  index_ = CampaignIndex::build(std::move(set));
  run_text(R"({"id":"r","bcat":["IAB2"],"imp":[{"id":"1","banner":{"w":300,"h":250}}]})");
  EXPECT_EQ(reason(0), NoBidReason::kCategory);  // c299 (IAB1) lies past the 256 examined
}

TEST_F(AuctionTest, NoGlobalAllocationPerAuction) {
  PaddedBody bodies[] = {testdata("banner.json"), testdata("video.json"), testdata("native.json"),
                         testdata("app.json"), testdata("multi_imp.json")};
  long before = global_allocations();
  int bids = 0;
  for (int round = 0; round < 2'000; ++round) {
    for (const PaddedBody& b : bodies) {
      ASSERT_TRUE(parser_.parse(b.data(), b.len, b.capacity(), &req_).ok());
      run_auction(*index_, req_, &decision_);
      bids += decision_.any();
    }
  }
  EXPECT_EQ(global_allocations() - before, 0);
  EXPECT_EQ(bids, 5 * 2'000);
}

}  // namespace
}  // namespace mnv::rtb
