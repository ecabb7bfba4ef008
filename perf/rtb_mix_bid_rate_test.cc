// perf/rtb_mix_bid_rate_test.cc — the sample campaigns (apps/rtb/campaigns.toml) against the
// load generator's request mix (perf/rtb_mix.h): about nine requests in ten find a bid, as in a
// tuned bidder (notes/openrtb.md), and every malformed one is refused. Keeps the two in step: a
// change to either that moves the rate out of its band fails here.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>

#include "apps/rtb/auction.h"
#include "apps/rtb/bid_request_parser.h"
#include "perf/rtb_mix.h"

namespace mnv::rtb {
namespace {

TEST(RtbMixBidRate, TheSampleCampaignsBidOnAboutNineInTen) {
  CampaignSet set;
  std::string error;
  ASSERT_TRUE(load_campaigns("apps/rtb/campaigns.toml", &set, &error)) << error;
  auto index = CampaignIndex::build(std::move(set));
  perf::RtbMixOptions opt;
  opt.count = 20'000;
  perf::RtbMix mix = perf::make_rtb_mix(opt);
  BidRequestParser parser(64 * 1024);
  std::string buf;
  BidRequest req;
  Decision decision;
  int valid = 0, refused = 0, bid = 0, imps = 0, imps_bid = 0;
  std::map<std::string, int> reasons;
  for (const std::string& body : mix.bodies) {
    buf.assign(body);
    buf.resize(body.size() + BidRequestParser::kPadding);
    if (!parser.parse(buf.data(), body.size(), buf.size(), &req).ok()) {
      ++refused;
      continue;
    }
    ++valid;
    run_auction(*index, req, &decision);
    bid += decision.any();
    for (const ImpDecision& d : decision.imps) {
      ++imps;
      imps_bid += !d.candidates.empty();
      if (d.candidates.empty()) ++reasons[no_bid_name(d.reason)];
    }
  }
  double rate = static_cast<double>(bid) / valid;
  std::string why;
  for (const auto& [name, n] : reasons) why += " " + name + "=" + std::to_string(n);
  std::printf("requests %d valid, %d refused; %.1f%% of valid requests bid; %d of %d impressions; no-bid:%s\n",
              valid, refused, 100 * rate, imps_bid, imps, why.c_str());
  EXPECT_EQ(static_cast<std::size_t>(refused), mix.malformed);
  EXPECT_GE(rate, 0.85) << why;
  EXPECT_LE(rate, 0.95) << why;
}

}  // namespace
}  // namespace mnv::rtb
