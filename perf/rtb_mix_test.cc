// perf/rtb_mix's requests: the same seed gives the same bodies; every good body is JSON with the
// fields a bidder reads (id, imp[] with ids and a banner, video or native, site or app, device.geo
// country, user.id, tmax); the vocabulary (banner sizes, video, countries, domains, bundles, bcat)
// all occurs; users follow a Zipf law (the most popular one comes back often); sizes average
// about 1.8 KB; and the malformed share is refused by a JSON parser or lacks a required field.
#include "perf/rtb_mix.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <map>
#include <set>
#include <string>
#include <string_view>

namespace mnv::perf {
namespace {

TEST(RtbMixTest, SameSeedSameBodiesOtherSeedOtherBodies) {
  RtbMix a = make_rtb_mix({.seed = 7, .count = 200});
  RtbMix b = make_rtb_mix({.seed = 7, .count = 200});
  RtbMix c = make_rtb_mix({.seed = 8, .count = 200});
  EXPECT_EQ(a.bodies, b.bodies);
  EXPECT_NE(a.bodies, c.bodies);
}

TEST(RtbMixTest, GoodBodiesAreBidRequestsWithTheWholeVocabulary) {
  RtbMix mix = make_rtb_mix({.seed = 1, .count = 5000});
  simdjson::dom::parser parser;
  std::set<std::string> sizes, countries, domains, bundles, mimes;
  std::map<std::string, int> users;
  int sites = 0, apps = 0, videos = 0, natives = 0, multi = 0, bcat = 0, floors = 0, bad = 0;
  for (const std::string& body : mix.bodies) {
    ASSERT_EQ(body.find('\n'), std::string::npos);
    simdjson::dom::element doc;
    if (parser.parse(body).get(doc) != simdjson::SUCCESS) {
      ++bad;
      continue;
    }
    simdjson::dom::array imps;
    std::string_view id;
    if (doc["id"].get(id) || doc["imp"].get(imps) || imps.size() == 0) {
      ++bad;
      continue;
    }
    bool imp_ok = true;
    for (simdjson::dom::element imp : imps) {
      std::string_view iid;
      if (imp["id"].get(iid) || iid.empty()) imp_ok = false;
      double fl = 0;
      simdjson::dom::element fe;
      if (!imp["bidfloor"].get(fe)) {
        if (fe.get(fl)) imp_ok = false;
        else ++floors;
      }
      simdjson::dom::array formats;
      if (!imp["banner"]["format"].get(formats)) {
        for (simdjson::dom::element f : formats) {
          sizes.insert(std::to_string(int64_t(f["w"])) + "x" + std::to_string(int64_t(f["h"])));
        }
      }
      simdjson::dom::element v;
      if (!imp["video"].get(v)) {
        ++videos;
        sizes.insert("video " + std::to_string(int64_t(v["w"])) + "x" + std::to_string(int64_t(v["h"])));
        for (simdjson::dom::element m : v["mimes"].get_array()) mimes.insert(std::string(std::string_view(m)));
      }
      if (!imp["native"].get(v)) ++natives;
    }
    if (!imp_ok) {
      ++bad;
      continue;
    }
    if (imps.size() > 1) ++multi;
    std::string_view s;
    if (!doc["site"]["domain"].get(s)) {
      ++sites;
      domains.insert(std::string(s));
    } else {
      ASSERT_FALSE(doc["app"]["bundle"].get(s)) << body;
      ++apps;
      bundles.insert(std::string(s));
    }
    ASSERT_FALSE(doc["device"]["geo"]["country"].get(s)) << body;
    countries.insert(std::string(s));
    ASSERT_FALSE(doc["user"]["id"].get(s)) << body;
    ++users[std::string(s)];
    int64_t tmax = 0;
    ASSERT_FALSE(doc["tmax"].get(tmax)) << body;
    EXPECT_EQ(tmax, mix.tmax_ms[static_cast<std::size_t>(&body - mix.bodies.data())]);
    EXPECT_GE(tmax, 80);
    EXPECT_LE(tmax, 300);
    simdjson::dom::array bc;
    if (!doc["bcat"].get(bc)) {
      ++bcat;
      std::set<std::string> cats;
      for (simdjson::dom::element e : bc) cats.insert(std::string(std::string_view(e)));
      EXPECT_TRUE(cats.count("IAB25") && cats.count("IAB26"));
    }
  }
  const int good = static_cast<int>(mix.bodies.size()) - bad;
  ASSERT_EQ(mix.tmax_ms.size(), mix.bodies.size());
  EXPECT_EQ(static_cast<std::size_t>(bad), mix.malformed);
  EXPECT_GT(bad, 20);   // about 1% of 5000
  EXPECT_LT(bad, 90);
  for (const char* want : {"300x250", "728x90", "320x50", "160x600", "300x600", "970x250", "video 640x360",
                           "video 1280x720"}) {
    EXPECT_TRUE(sizes.count(want)) << want;
  }
  EXPECT_TRUE(mimes.count("video/mp4"));
  EXPECT_EQ(countries, (std::set<std::string>{"USA", "GBR", "DEU", "FRA", "CAN", "JPN", "BRA", "IND"}));
  EXPECT_TRUE(domains.count("news.example.com"));
  EXPECT_TRUE(bundles.count("com.example.game"));
  EXPECT_GT(sites, good / 2);
  EXPECT_GT(apps, good / 4);
  EXPECT_GT(videos, good / 20);
  EXPECT_GT(natives, good / 20);
  EXPECT_GT(multi, good / 10);
  EXPECT_GT(bcat, good / 5);
  EXPECT_LT(bcat, good / 2);
  EXPECT_GT(floors, good / 2);
  // Zipf over 100,000 users: the most frequent user recurs often; many users appear once.
  int top = 0;
  for (const auto& [u, n] : users) top = n > top ? n : top;
  EXPECT_GT(top, good / 50) << "the most popular user should have about 5% of the requests";
  EXPECT_GT(users.size(), static_cast<std::size_t>(good / 5));
  // About 1.8 KB on average, as real bid requests are.
  EXPECT_GT(mix.mean_bytes, 1500) << mix.mean_bytes;
  EXPECT_LT(mix.mean_bytes, 2100) << mix.mean_bytes;
}

}  // namespace
}  // namespace mnv::perf
