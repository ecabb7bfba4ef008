// apps/rtb/bid_response_writer_test.cc — responses parse back (simdjson) to what was written;
// a buffer too small gets 0 and nothing past its end; no allocation.
#include "apps/rtb/bid_response_writer.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdio>
#include <string>
#include <vector>

#include "runtime/global_alloc_counter.h"

namespace mnv::rtb {
namespace {

struct Fixture {
  Campaign banner_campaign, video_campaign;
  Fixture() {
    banner_campaign.id = "acme-shoes-na";
    Creative c;
    c.crid = "acme-300x250";
    c.type = CreativeType::kBanner;
    c.w = 300;
    c.h = 250;
    c.adomain = {"acme.example", "shop.acme.example"};
    c.adm = "<a href=\"https://acme.example/?a=1&b=2\">\n\t\\caf\xc3\xa9\x01</a>";
    banner_campaign.creatives.push_back(c);
    video_campaign.id = "stark-auto-video";
    Creative v;
    v.crid = "stark-30s";
    v.type = CreativeType::kVideo;
    v.mime = "video/mp4";
    v.adomain = {"stark-motors.example"};
    v.adm = "<VAST version=\"4.0\"/>";
    video_campaign.creatives.push_back(v);
  }
  std::vector<ResponseBid> bids() const {
    ResponseBid a;
    a.id = "b-1";
    a.imp_id = "1";
    a.price = 2'500'000;
    a.nurl = "https://bidder.example/win?b=b-1&p=${AUCTION_PRICE}&sig=ab12";
    a.burl = "https://bidder.example/bill?b=b-1&p=${AUCTION_PRICE}";
    a.campaign = &banner_campaign;
    a.creative = &banner_campaign.creatives[0];
    ResponseBid b;
    b.id = "b-2";
    b.imp_id = "pre\"roll";
    b.price = 9'000'001;
    b.lurl = "https://bidder.example/loss?b=b-2&r=${AUCTION_LOSS}";
    b.campaign = &video_campaign;
    b.creative = &video_campaign.creatives[0];
    return {a, b};
  }
};

std::string_view str(simdjson::dom::element e) { return std::string_view(e.get_string().value()); }

TEST(BidResponseWriter, ParsesBackToWhatWasWritten) {
  Fixture f;
  auto bids = f.bids();
  char buf[4096];
  std::size_t n = write_bid_response("req-\"42\"", "seat-1", bids, buf, sizeof buf);
  ASSERT_GT(n, 0u);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(buf, n).get(doc), simdjson::SUCCESS) << std::string(buf, n);
  EXPECT_EQ(str(doc["id"]), "req-\"42\"");
  EXPECT_EQ(str(doc["cur"]), "USD");
  simdjson::dom::array seatbid = doc["seatbid"].get_array().value();
  ASSERT_EQ(seatbid.size(), 1u);
  EXPECT_EQ(str(seatbid.at(0)["seat"]), "seat-1");
  simdjson::dom::array bid = seatbid.at(0)["bid"].get_array().value();
  ASSERT_EQ(bid.size(), 2u);
  simdjson::dom::element a = bid.at(0).value();
  EXPECT_EQ(str(a["id"]), "b-1");
  EXPECT_EQ(str(a["impid"]), "1");
  EXPECT_EQ(a["price"].get_double().value(), 2.5);
  EXPECT_EQ(str(a["nurl"]), bids[0].nurl);
  EXPECT_EQ(str(a["burl"]), bids[0].burl);
  EXPECT_TRUE(a["lurl"].error() == simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(str(a["adm"]), f.banner_campaign.creatives[0].adm);
  simdjson::dom::array adomain = a["adomain"].get_array().value();
  ASSERT_EQ(adomain.size(), 2u);
  EXPECT_EQ(str(adomain.at(1).value()), "shop.acme.example");
  EXPECT_EQ(str(a["crid"]), "acme-300x250");
  EXPECT_EQ(str(a["cid"]), "acme-shoes-na");
  EXPECT_EQ(a["w"].get_int64().value(), 300);
  EXPECT_EQ(a["h"].get_int64().value(), 250);
  EXPECT_EQ(a["mtype"].get_int64().value(), 1);
  simdjson::dom::element b = bid.at(1).value();
  EXPECT_EQ(str(b["impid"]), "pre\"roll");
  EXPECT_EQ(b["price"].get_double().value(), 9.000001);
  EXPECT_EQ(std::string(buf, n).find("\"price\":9.000001,"), std::string(buf, n).find("\"price\":9"));
  EXPECT_TRUE(b["nurl"].error() == simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(str(b["lurl"]), bids[1].lurl);
  EXPECT_TRUE(b["w"].error() == simdjson::NO_SUCH_FIELD);  // a video without a size
  EXPECT_EQ(b["mtype"].get_int64().value(), 2);
}

// Creatives' bid tails written once at load give the very same bytes as escaping each time.
TEST(BidResponseWriter, PrewrittenTailsWriteTheSameBytes) {
  Fixture f;
  char plain[4096], pre[4096];
  auto bids = f.bids();
  std::size_t n = write_bid_response("req-1", "mnv", bids, plain, sizeof plain);
  ASSERT_GT(n, 0u);
  prewrite_bid_tails(&f.banner_campaign);
  prewrite_bid_tails(&f.video_campaign);
  ASSERT_FALSE(f.banner_campaign.creatives[0].bid_tail.empty());
  EXPECT_EQ(f.banner_campaign.creatives[0].bid_tail.rfind(",\"adm\":\"<a href=\\\"", 0), 0u);
  EXPECT_EQ(f.banner_campaign.creatives[0].bid_tail.back(), '}');
  bids = f.bids();
  std::size_t m = write_bid_response("req-1", "mnv", bids, pre, sizeof pre);
  EXPECT_EQ(std::string(pre, m), std::string(plain, n));
  // Too small still gives 0.
  EXPECT_EQ(write_bid_response("req-1", "mnv", bids, pre, n - 1), 0u);
}

TEST(BidResponseWriter, WithoutASeat) {
  Fixture f;
  auto bids = f.bids();
  char buf[4096];
  std::size_t n = write_bid_response("r", "", std::span(bids).first(1), buf, sizeof buf);
  ASSERT_GT(n, 0u);
  std::string out(buf, n);
  EXPECT_EQ(out.find("seat\""), std::string::npos);
  EXPECT_EQ(out.rfind("{\"id\":\"r\",\"seatbid\":[{\"bid\":[{\"id\":\"b-1\",\"impid\":\"1\",\"price\":2.5,", 0), 0u) << out;
  EXPECT_EQ(out.substr(out.size() - 17), "}]}],\"cur\":\"USD\"}") << out;
}

// The escaper skips 16 plain bytes at a time: a byte to escape at any position of a string of
// any length (past 16, and bytes >= 0x80 beside it) still comes back exactly.
TEST(BidResponseWriter, EscapesAtEveryPositionOfLongStrings) {
  const std::string specials = std::string("\"\\\n\r\t\x01\x1f", 7) + std::string(1, '\0');
  for (std::size_t len = 1; len <= 40; ++len) {
    for (std::size_t at = 0; at < len; ++at) {
      for (char special : specials) {
        std::string id(len, 'a');
        if (at + 1 < len) id[at + 1] = '\xc3';  // a high byte beside it: not a control character
        id[at] = special;
        char buf[512];
        std::size_t n = write_no_bid_response(id, 2, buf, sizeof buf);
        ASSERT_GT(n, 0u);
        std::string expect;  // the escaping spelled out byte by byte
        expect.push_back('"');
        for (unsigned char c : id) {
          if (c == '"') expect += "\\\"";
          else if (c == '\\') expect += "\\\\";
          else if (c == '\n') expect += "\\n";
          else if (c == '\r') expect += "\\r";
          else if (c == '\t') expect += "\\t";
          else if (c < 0x20) { char u[7]; std::snprintf(u, sizeof u, "\\u%04x", c); expect += u; }
          else expect.push_back(static_cast<char>(c));
        }
        expect.push_back('"');
        std::string out(buf, n);
        ASSERT_EQ(out, "{\"id\":" + expect + ",\"nbr\":2}") << "length " << len << " at " << at;
      }
    }
  }
}

TEST(BidResponseWriter, NoBid) {
  char buf[64];
  std::size_t n = write_no_bid_response("r-1", 7, buf, sizeof buf);
  EXPECT_EQ(std::string(buf, n), "{\"id\":\"r-1\",\"nbr\":7}");
  EXPECT_EQ(write_no_bid_response("r-1", 7, buf, 19), 0u);
}

TEST(BidResponseWriter, TooSmallIsZeroAndWritesNothingPastTheEnd) {
  Fixture f;
  auto bids = f.bids();
  char full[4096];
  std::size_t n = write_bid_response("req", "s", bids, full, sizeof full);
  ASSERT_GT(n, 0u);
  std::vector<char> buf(n + 16);
  for (std::size_t cap = 0; cap < n; ++cap) {
    std::fill(buf.begin(), buf.end(), '#');
    EXPECT_EQ(write_bid_response("req", "s", bids, buf.data(), cap), 0u) << cap;
    for (std::size_t i = cap; i < buf.size(); ++i) ASSERT_EQ(buf[i], '#') << cap;
  }
  EXPECT_EQ(write_bid_response("req", "s", bids, buf.data(), n), n);
  EXPECT_EQ(std::string(buf.data(), n), std::string(full, n));
}

TEST(BidResponseWriter, NoGlobalAllocation) {
  Fixture f;
  auto bids = f.bids();
  char buf[4096];
  long before = global_allocations();
  std::size_t total = 0;
  for (int i = 0; i < 10'000; ++i) total += write_bid_response("req", "s", bids, buf, sizeof buf);
  EXPECT_EQ(global_allocations() - before, 0);
  EXPECT_GT(total, 0u);
}

}  // namespace
}  // namespace mnv::rtb
