// apps/rtb/bid_request_parser_test.cc — the hand-written requests of testdata/ parse into the
// fields they hold; every bad one is refused with its reason and the right status; a parse
// allocates nothing in steady state.
#include "apps/rtb/bid_request_parser.h"

#include <gtest/gtest.h>

#include <string>

#include "apps/rtb/testdata.h"
#include "runtime/global_alloc_counter.h"

namespace mnv::rtb {
namespace {

constexpr std::size_t kMaxBody = 16 * 1024;

class ParserTest : public ::testing::Test {
 protected:
  ParseResult parse(const PaddedBody& body) { return parser_.parse(body.data(), body.len, body.capacity(), &req_); }
  ParseResult parse_file(std::string_view name) {
    body_ = testdata(name);
    return parse(body_);
  }
  ParseResult parse_text(std::string_view text) {
    body_ = padded(text);
    return parse(body_);
  }
  BidRequestParser parser_{kMaxBody};
  BidRequest req_;
  PaddedBody body_;
};

TEST_F(ParserTest, Banner) {
  ParseResult r = parse_file("banner.json");
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.reason, "");
  EXPECT_EQ(req_.id, "80ce30c53c16e6ede735f123ef6e32361bfc7b22");
  EXPECT_EQ(req_.at, 1);
  ASSERT_EQ(req_.cur.size(), 1);
  EXPECT_EQ(req_.cur[0], "USD");
  ASSERT_EQ(req_.imp.size(), 1);
  const Imp& imp = req_.imp[0];
  EXPECT_EQ(imp.id, "1");
  EXPECT_EQ(imp.bidfloor, 30'000);
  EXPECT_EQ(imp.bidfloorcur, "USD");
  EXPECT_EQ(imp.tagid, "homepage-top");
  ASSERT_TRUE(imp.banner.present);
  ASSERT_EQ(imp.banner.formats.size(), 2);  // format[] wins over w/h
  EXPECT_EQ(imp.banner.formats[0], (Size{300, 250}));
  EXPECT_EQ(imp.banner.formats[1], (Size{300, 600}));
  EXPECT_FALSE(imp.video.present);
  EXPECT_FALSE(imp.native);
  EXPECT_EQ(req_.publisher.channel, Channel::kSite);
  EXPECT_EQ(req_.publisher.domain, "news.example.com");
  ASSERT_EQ(req_.publisher.cat.size(), 2);
  EXPECT_EQ(req_.publisher.cat[1], "IAB12-1");
  EXPECT_EQ(req_.publisher.publisher_id, "8953");
  EXPECT_EQ(req_.device.ip, "203.0.113.17");
  EXPECT_EQ(req_.device.devicetype, 2);
  EXPECT_EQ(req_.device.country, "USA");
  EXPECT_NE(req_.device.ua.find("Safari"), std::string_view::npos);
  EXPECT_EQ(req_.user.id, "55816b39711f9b5acf3b90e313ed29e51665623f");
  EXPECT_EQ(req_.user.buyeruid, "ab12cd34");
  EXPECT_EQ(req_.tmax, 120);
  ASSERT_EQ(req_.bcat.size(), 2);
  EXPECT_EQ(req_.bcat[0], "IAB25");
  EXPECT_EQ(req_.bcat[1], "IAB26");
  ASSERT_EQ(req_.badv.size(), 1);
  EXPECT_EQ(req_.badv[0], "competitor.example");
  EXPECT_EQ(req_.regs.gdpr, 0);
  EXPECT_EQ(req_.regs.us_privacy, "1YNN");
  EXPECT_FALSE(req_.test);
}

TEST_F(ParserTest, Video) {
  ParseResult r = parse_file("video.json");
  ASSERT_TRUE(r.ok()) << r.reason;
  ASSERT_EQ(req_.imp.size(), 1);
  const Imp& imp = req_.imp[0];
  EXPECT_FALSE(imp.banner.present);
  ASSERT_TRUE(imp.video.present);
  EXPECT_EQ(imp.video.size, (Size{640, 360}));
  ASSERT_EQ(imp.video.mimes.size(), 3);
  EXPECT_EQ(imp.video.mimes[1], "video/mp4");
  EXPECT_EQ(imp.bidfloor, 3'500'000);
  EXPECT_EQ(imp.bidfloorcur, "USD");  // the default
  EXPECT_EQ(req_.at, 2);
  EXPECT_EQ(req_.tmax, 250);
  EXPECT_EQ(req_.device.country, "GBR");
  EXPECT_EQ(req_.regs.gdpr, -1);  // absent
  EXPECT_TRUE(req_.cur.empty());
}

TEST_F(ParserTest, Native) {
  ParseResult r = parse_file("native.json");
  ASSERT_TRUE(r.ok()) << r.reason;
  ASSERT_EQ(req_.imp.size(), 1);
  EXPECT_TRUE(req_.imp[0].native);
  EXPECT_FALSE(req_.imp[0].banner.present);
  EXPECT_EQ(req_.imp[0].tagid, "feed-slot-3");
  EXPECT_EQ(req_.imp[0].bidfloor, 750'000);
  EXPECT_EQ(req_.publisher.domain, "blog.example.org");
  EXPECT_EQ(req_.device.devicetype, 4);
}

TEST_F(ParserTest, App) {
  ParseResult r = parse_file("app.json");
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(req_.publisher.channel, Channel::kApp);
  EXPECT_EQ(req_.publisher.bundle, "com.example.game");
  EXPECT_EQ(req_.publisher.domain, "");
  EXPECT_EQ(req_.publisher.publisher_id, "agltb3B1Yi1pbmNyDAsSA0FwcBiJkfTUCV");
  ASSERT_EQ(req_.imp.size(), 1);
  ASSERT_EQ(req_.imp[0].banner.formats.size(), 1);  // banner.w/h without format[]
  EXPECT_EQ(req_.imp[0].banner.formats[0], (Size{320, 50}));
  EXPECT_EQ(req_.device.ifa, "AA000DFE74168477C70D291f574D344790E0BB11");
  EXPECT_EQ(req_.device.country, "CAN");
  EXPECT_EQ(req_.user.id, "");
  EXPECT_EQ(req_.user.buyeruid, "bu-4411");
}

TEST_F(ParserTest, MultiImp) {
  ParseResult r = parse_file("multi_imp.json");
  ASSERT_TRUE(r.ok()) << r.reason;
  ASSERT_EQ(req_.imp.size(), 4);
  EXPECT_EQ(req_.imp[0].id, "top");
  EXPECT_EQ(req_.imp[0].banner.formats.size(), 2);
  EXPECT_EQ(req_.imp[1].banner.formats[1], (Size{300, 600}));
  EXPECT_EQ(req_.imp[2].bidfloorcur, "EUR");
  EXPECT_EQ(req_.imp[2].bidfloor, 400'000);
  EXPECT_TRUE(req_.imp[3].video.present);
  EXPECT_EQ(req_.imp[3].bidfloor, 6'000'000);
  EXPECT_TRUE(req_.test);
}

TEST_F(ParserTest, FieldsInAnyOrderEscapesAndUnknownsSkipped) {
  ParseResult r = parse_text(
      R"({"ext":{"imp":[]},"imp":[{"banner":{"format":[{"h":90,"w":728,"ext":{"w":1}}]},"id":"i\u00e9"}],)"
      R"("unknown":[1,{"a":null},"x"],"device":{"geo":{"country":"JPN"},"devicetype":1},"id":"a\"b"})");
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(req_.id, "a\"b");
  EXPECT_EQ(req_.imp[0].id, "i\xc3\xa9");
  EXPECT_EQ(req_.imp[0].banner.formats[0], (Size{728, 90}));
  EXPECT_EQ(req_.device.country, "JPN");
}

TEST_F(ParserTest, EscapedKeysAreUnescaped) {
  ParseResult r = parse_text(R"({"i\u0064":"x","\u0069mp":[{"id":"1","b\u0069dfloor":1.5}]})");
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(req_.id, "x");
  ASSERT_EQ(req_.imp.size(), 1);
  EXPECT_EQ(req_.imp[0].bidfloor, 1'500'000);
}

TEST_F(ParserTest, BadInputIsInvalidWithItsReason) {
  struct Case {
    const char* file;
    const char* reason;
  };
  for (const Case& c : {
           Case{"bad_truncated.json", "malformed JSON"},
           Case{"bad_no_id.json", "id: required: a non-empty string"},
           Case{"bad_no_imp.json", "imp: required: an array of at least one impression"},
           Case{"bad_empty_imp.json", "imp: required: an array of at least one impression"},
           Case{"bad_type.json", "imp[0].banner.w: expected an integer from 0 to 65535"},
           Case{"bad_imp_no_id.json", "imp[0].id: required: a non-empty string"},
           Case{"bad_floor.json", "imp[0].bidfloor: expected a number from 0 to 1000000"},
           Case{"bad_not_object.json", "body: expected a JSON object"},
           Case{"bad_trailing.json", "malformed JSON"},
       }) {
    ParseResult r = parse_file(c.file);
    EXPECT_EQ(r.status, ParseStatus::kInvalid) << c.file << ": " << r.reason;
    EXPECT_NE(r.reason.find(c.reason), std::string_view::npos) << c.file << ": " << r.reason;
  }
}

TEST_F(ParserTest, MoreBadInput) {
  struct Case {
    const char* text;
    const char* reason;
  };
  for (const Case& c : {
           Case{"", "body: empty"},
           Case{"   ", "body: empty"},
           Case{"null", "body: expected a JSON object"},
           Case{R"({"id":1,"imp":[{"id":"1"}]})", "id: expected a string"},
           Case{R"({"id":"a","imp":{"id":"1"}})", "imp: expected an array of objects"},
           Case{R"({"id":"a","imp":[{"id":"1"}],"tmax":-5})", "tmax: expected an integer from 0 to 1000000"},
           Case{R"({"id":"a","imp":[{"id":"1"}],"at":7})", "at: expected an integer from 1 to 3"},
           Case{R"({"id":"a","imp":[{"id":"1"}],"bcat":"IAB25"})", "bcat: expected an array of strings"},
           Case{R"({"id":"a","imp":[{"id":"1"}],"bcat":["IAB25",7]})", "bcat[1]: expected a string"},
           Case{R"({"id":"a","imp":[{"id":"1","bidfloor":"0.5"}]})", "imp[0].bidfloor: expected a number"},
           Case{R"({"id":"a","imp":[{"id":"1"}],"site":{},"app":{}})", "app: a request has a site or an app, not both"},
           Case{R"({"id":"a","imp":[{"id":"1","video":{"mimes":["video/mp4"],"w":1.5}}]})",
                "imp[0].video.w: expected an integer"},
           Case{R"({"id":"a","imp":[{"id":"1"}],"device":{"geo":{"country":["USA"]}}})",
                "device.geo.country: expected a string"},
           Case{R"({"id":"a","imp":[{"id":"1"}],"regs":{"gdpr":2}})", "regs.gdpr: expected an integer from 0 to 1"},
           Case{R"({"id":"a","imp":[{"id":"1"}],})", "malformed JSON"},
           Case{R"({"id":"a","imp":[{"id":"1"}]}})", "malformed JSON"},
       }) {
    ParseResult r = parse_text(c.text);
    EXPECT_EQ(r.status, ParseStatus::kInvalid) << c.text << ": " << r.reason;
    EXPECT_NE(r.reason.find(c.reason), std::string_view::npos) << c.text << ": " << r.reason;
  }
}

TEST_F(ParserTest, OverLimitsIsTooLarge) {
  std::string many = R"({"id":"a","imp":[)";
  for (int i = 0; i <= kMaxImps; ++i) many += std::string(i ? "," : "") + R"({"id":")" + std::to_string(i) + R"("})";
  many += "]}";
  ParseResult r = parse_text(many);
  EXPECT_EQ(r.status, ParseStatus::kTooLarge);
  EXPECT_EQ(r.reason, "imp[16]: more than 16 entries (the bidder's limit)");

  std::string bcat = R"({"id":"a","imp":[{"id":"1"}],"bcat":[)";
  for (int i = 0; i <= kMaxCategories; ++i) bcat += std::string(i ? "," : "") + R"("IAB)" + std::to_string(i) + R"(")";
  bcat += "]}";
  r = parse_text(bcat);
  EXPECT_EQ(r.status, ParseStatus::kTooLarge);
  EXPECT_NE(r.reason.find("bcat[64]: more than 64 entries"), std::string_view::npos) << r.reason;

  std::string big = R"({"id":"a","imp":[{"id":"1"}],"pad":")" + std::string(kMaxBody, 'x') + R"("})";
  r = parse_text(big);
  EXPECT_EQ(r.status, ParseStatus::kTooLarge);
  EXPECT_NE(r.reason.find("over the limit of 16384"), std::string_view::npos) << r.reason;
}

TEST_F(ParserTest, AParseAfterAFailureStartsClean) {
  ASSERT_FALSE(parse_file("bad_type.json").ok());
  ParseResult r = parse_file("app.json");
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.reason, "");
  EXPECT_EQ(req_.imp.size(), 1);
  EXPECT_EQ(req_.bcat.size(), 0);
}

TEST_F(ParserTest, NoGlobalAllocationPerParseInSteadyState) {
  const char* files[] = {"banner.json", "video.json", "native.json", "app.json", "multi_imp.json", "bad_type.json",
                         "bad_truncated.json"};
  PaddedBody bodies[7];
  for (int i = 0; i < 7; ++i) bodies[i] = testdata(files[i]);
  for (const PaddedBody& b : bodies) parse(b);  // warm up (simdjson picks its kernel once)
  long before = global_allocations();
  int ok = 0;
  for (int round = 0; round < 10'000; ++round) {
    for (const PaddedBody& b : bodies) ok += parse(b).ok();
  }
  EXPECT_EQ(global_allocations() - before, 0);
  EXPECT_EQ(ok, 5 * 10'000);
}

}  // namespace
}  // namespace mnv::rtb
