// apps/rtb/campaigns_test.cc — the sample campaigns load; every bad file is refused with the
// file, line, campaign and field.
#include "apps/rtb/campaigns.h"

#include <gtest/gtest.h>

namespace mnv::rtb {
namespace {

TEST(Campaigns, TheSampleLoads) {
  CampaignSet set;
  std::string error;
  ASSERT_TRUE(load_campaigns("apps/rtb/campaigns.toml", &set, &error)) << error;
  ASSERT_EQ(set.campaigns.size(), 11u);
  const Campaign& c = set.campaigns[0];
  EXPECT_EQ(c.index, 0u);
  EXPECT_EQ(c.id, "acme-shoes-na");
  EXPECT_EQ(c.total_budget, 50'000'000'000);
  EXPECT_EQ(c.daily_budget, 2'000'000'000);
  EXPECT_EQ(c.bid_cpm, 2'500'000);
  EXPECT_EQ(c.countries, (std::vector<std::string>{"USA", "CAN"}));
  EXPECT_EQ(c.exclude_categories, (std::vector<std::string>{"IAB25", "IAB26"}));
  EXPECT_EQ(c.freq_cap.impressions, 5u);
  EXPECT_EQ(c.freq_cap.window_s, 86400u);
  ASSERT_EQ(c.creatives.size(), 3u);
  EXPECT_EQ(c.creatives[1].crid, "acme-728x90");
  EXPECT_EQ(c.creatives[1].w, 728);
  EXPECT_EQ(c.creatives[1].adomain, (std::vector<std::string>{"acme.example"}));
  EXPECT_NE(c.creatives[1].adm.find("<img"), std::string::npos);
  EXPECT_EQ(c.at, "apps/rtb/campaigns.toml: line 15");
  EXPECT_EQ(set.campaigns[2].device_types, 1u << 2);
  EXPECT_EQ(set.campaigns[4].creatives[0].type, CreativeType::kVideo);
  EXPECT_EQ(set.campaigns[4].creatives[0].mime, "video/mp4");
  EXPECT_EQ(set.campaigns[6].creatives[2].type, CreativeType::kNative);
  ASSERT_EQ(set.rates.size(), 4u);
  for (std::size_t i = 0; i < set.campaigns.size(); ++i) EXPECT_EQ(set.campaigns[i].index, i);
}

constexpr const char* kGood = R"(
[[campaign]]
id = "c1"
total_budget_micros = 1_000_000
daily_budget_micros = 500_000
bid_cpm_micros = 2_000_000
  [[campaign.creative]]
  crid = "k1"
  type = "banner"
  w = 300
  h = 250
  adomain = ["a.example"]
  adm = "<b>ad</b>"
)";

std::string refused(const std::string& text) {
  CampaignSet set;
  set.campaigns.resize(1);
  std::string error;
  EXPECT_FALSE(parse_campaigns(text, "t.toml", &set, &error)) << text;
  EXPECT_EQ(set.campaigns.size(), 1u);  // unchanged
  return error;
}

std::string with(const std::string& from, const std::string& to) {
  std::string s = kGood;
  std::size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return s.replace(at, from.size(), to);
}

TEST(Campaigns, AMinimalCampaign) {
  CampaignSet set;
  std::string error;
  ASSERT_TRUE(parse_campaigns(kGood, "t.toml", &set, &error)) << error;
  ASSERT_EQ(set.campaigns.size(), 1u);
  EXPECT_TRUE(set.campaigns[0].countries.empty());
  EXPECT_EQ(set.campaigns[0].device_types, 0u);
  EXPECT_FALSE(set.campaigns[0].freq_cap.enabled());
}

TEST(Campaigns, BadValuesNameFileLineCampaignAndField) {
  EXPECT_EQ(refused(with("bid_cpm_micros = 2_000_000", "bid_cpm_micros = -5")),
            "t.toml: line 6: campaign \"c1\": bid_cpm_micros = -5: must be an integer from 1 to 1000000000000");
  EXPECT_EQ(refused(with("bid_cpm_micros = 2_000_000", "bid_cpm_micros = 2.5")),
            "t.toml: line 6: campaign \"c1\": bid_cpm_micros = 2.5: must be an integer from 1 to 1000000000000");
  EXPECT_EQ(refused(with("daily_budget_micros = 500_000", "daily_budget_micros = 5_000_000")),
            "t.toml: line 5: campaign \"c1\": daily_budget_micros = 5000000: must not exceed total_budget_micros "
            "(1000000)");
  EXPECT_EQ(refused(with("bid_cpm_micros = 2_000_000", "bid_cpm_micros = 2_000_000\ncountries = [\"US\"]")),
            "t.toml: line 7: campaign \"c1\": countries[] = \"US\": must be ISO 3166-1 alpha-3 codes (e.g. \"USA\")");
  EXPECT_EQ(refused(with("bid_cpm_micros = 2_000_000", "bid_cpm_micros = 2_000_000\ndevice_types = [9]")),
            "t.toml: line 7: campaign \"c1\": device_types[] = 9: must be an integer from 1 to 7");
  EXPECT_EQ(refused(with("bid_cpm_micros = 2_000_000", "bid_cpm_micros = 2_000_000\ncategories = [\"Sports\"]")),
            "t.toml: line 7: campaign \"c1\": categories[] = \"Sports\": must be IAB categories (e.g. \"IAB18\", "
            "\"IAB9-30\")");
  EXPECT_EQ(refused(with("bid_cpm_micros = 2_000_000", "bid_cpm_micros = 2_000_000\ncountires = [\"USA\"]")),
            "t.toml: line 7: campaign \"c1\": countires = [\"USA\"]: unknown key (known: id, total_budget_micros, "
            "daily_budget_micros, bid_cpm_micros, categories, countries, device_types, sites, apps, exclude_sites, "
            "exclude_apps, exclude_categories, freq_cap, creative)");
  EXPECT_EQ(refused(with("bid_cpm_micros = 2_000_000", "bid_cpm_micros = 2_000_000\nfreq_cap = { impressions = 3 }")),
            "t.toml: line 7: campaign \"c1\": freq_cap = { impressions = 3 }: must be { impressions = N, window_s = "
            "SECONDS }");
  EXPECT_EQ(refused(with("  w = 300\n", "")), "t.toml: line 7: campaign \"c1\": creative \"k1\": a banner needs w and h");
  EXPECT_EQ(refused(with("  type = \"banner\"", "  type = \"popup\"")),
            "t.toml: line 9: campaign \"c1\": creative.type = \"popup\": must be \"banner\", \"video\" or \"native\"");
  EXPECT_EQ(refused(with("  adomain = [\"a.example\"]", "  adomain = []")),
            "t.toml: line 7: campaign \"c1\": creative \"k1\": adomain is required: at least one advertiser domain "
            "(requests' badv blocks by it)");
}

TEST(Campaigns, MissingFieldsAndDuplicates) {
  EXPECT_EQ(refused(with("bid_cpm_micros = 2_000_000\n", "")),
            "t.toml: line 2: campaign \"c1\": bid_cpm_micros is required");
  std::string two = std::string(kGood) + kGood;
  EXPECT_NE(refused(two).find("t.toml: line 15: campaign \"c1\": id appears twice"), std::string::npos) << refused(two);
  EXPECT_EQ(refused("[[campaign]]\nid = \"x\"\n"),
            "t.toml: line 1: campaign \"x\": total_budget_micros is required\n"
            "t.toml: line 1: campaign \"x\": daily_budget_micros is required\n"
            "t.toml: line 1: campaign \"x\": bid_cpm_micros is required\n"
            "t.toml: line 1: campaign \"x\": at least one [[campaign.creative]] is required");
  EXPECT_EQ(refused("campaigns = 3\n"), "t.toml: line 1: campaigns = 3: unknown key (known: [[campaign]], [rates])");
  EXPECT_EQ(refused("[rates]\nEUR = 1.08\n"),
            "t.toml: line 2: rates.EUR = 1.08: must be micro-USD per unit, an integer from 1 to 1000000000000");
  EXPECT_EQ(refused("[[campaign]\n"), "t.toml: line 1: Error while parsing table header: expected ']', saw '\\n'");
}

TEST(Campaigns, FileErrors) {
  CampaignSet set;
  std::string error;
  EXPECT_FALSE(load_campaigns("/nonexistent/campaigns.toml", &set, &error));
  EXPECT_EQ(error, "/nonexistent/campaigns.toml: cannot open: No such file or directory");
}

TEST(Campaigns, Covers) {
  EXPECT_TRUE(category_covers("IAB25", "IAB25"));
  EXPECT_TRUE(category_covers("IAB25", "IAB25-3"));
  EXPECT_FALSE(category_covers("IAB2", "IAB25"));
  EXPECT_FALSE(category_covers("IAB25-3", "IAB25"));
  EXPECT_TRUE(domain_covers("example.com", "news.example.com"));
  EXPECT_TRUE(domain_covers("example.com", "example.com"));
  EXPECT_FALSE(domain_covers("example.com", "badexample.com"));
  EXPECT_FALSE(domain_covers("news.example.com", "example.com"));
}

}  // namespace
}  // namespace mnv::rtb
