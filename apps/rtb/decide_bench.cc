// apps/rtb/decide_bench.cc — what the decision core costs per request: the parse of each
// hand-written request, and the auction against 10 and 10,000 synthetic campaigns (the index
// must make them cost about the same), and the BidResponse writer.
//
//   bazel run --config=opt //apps/rtb:decide_bench
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <string>

#include "apps/rtb/auction.h"
#include "apps/rtb/bid_request_parser.h"
#include "apps/rtb/bid_response_writer.h"
#include "apps/rtb/testdata.h"

namespace mnv::rtb {
namespace {

const char* const kFiles[] = {"banner.json", "video.json", "native.json", "app.json", "multi_imp.json"};

// `n` campaigns spread over the load mix's countries, sizes, devices and categories, with a
// fixed seed: each targets 1-3 countries (a fifth of them every country), 1-3 slots, a device
// type set, and bids 0.50-10.00 USD.
std::shared_ptr<const CampaignIndex> synthetic(int n) {
  static const char* const countries[] = {"USA", "GBR", "DEU", "FRA", "CAN", "JPN", "BRA", "IND"};
  static const std::uint16_t sizes[][2] = {{300, 250}, {728, 90}, {320, 50}, {160, 600}, {300, 600}, {970, 250}};
  std::mt19937 rng(42);
  CampaignSet set;
  for (int i = 0; i < n; ++i) {
    Campaign c;
    c.index = static_cast<std::uint32_t>(i);
    c.id = "syn-" + std::to_string(i);
    c.total_budget = c.daily_budget = 1'000'000'000;
    c.bid_cpm = 500'000 + static_cast<Micros>(rng() % 9'500'000);
    c.categories = {"IAB" + std::to_string(1 + rng() % 24)};
    if (rng() % 5 != 0) {
      for (unsigned k = 0, m = 1 + rng() % 3; k < m; ++k) c.countries.push_back(countries[rng() % 8]);
    }
    if (rng() % 2 == 0) c.device_types = (1u << 2) | (1u << (1 + rng() % 7));
    if (rng() % 4 == 0) c.exclude_categories = {"IAB25", "IAB26"};
    for (unsigned k = 0, m = 1 + rng() % 3; k < m; ++k) {
      Creative cr;
      cr.crid = c.id + "-" + std::to_string(k);
      unsigned slot = rng() % 8;
      if (slot < 6) {
        cr.type = CreativeType::kBanner;
        cr.w = sizes[slot][0];
        cr.h = sizes[slot][1];
      } else if (slot == 6) {
        cr.type = CreativeType::kVideo;
        cr.mime = "video/mp4";
      } else {
        cr.type = CreativeType::kNative;
      }
      cr.adomain = {"adv" + std::to_string(i % 500) + ".example"};
      cr.adm = "<a href=\"https://example.com\">ad</a>";
      c.creatives.push_back(std::move(cr));
    }
    set.campaigns.push_back(std::move(c));
  }
  return CampaignIndex::build(std::move(set));
}

void BM_Parse(benchmark::State& state) {
  PaddedBody body = testdata(kFiles[state.range(0)]);
  BidRequestParser parser(16 * 1024);
  BidRequest req;
  for (auto _ : state) {
    ParseResult r = parser.parse(body.data(), body.len, body.capacity(), &req);
    benchmark::DoNotOptimize(r);
  }
  state.SetLabel(std::string(kFiles[state.range(0)]) + " " + std::to_string(body.len) + " B");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.len));
}
BENCHMARK(BM_Parse)->DenseRange(0, 4);

// The auction alone over the five requests (parsed once, each by a parser of its own: a request's
// strings live in its parser until the next parse), per request.
void BM_Auction(benchmark::State& state) {
  auto index = synthetic(static_cast<int>(state.range(0)));
  static BidRequest reqs[5];
  std::unique_ptr<BidRequestParser> parsers[5];
  PaddedBody bodies[5];
  for (int i = 0; i < 5; ++i) {
    parsers[i] = std::make_unique<BidRequestParser>(16 * 1024);
    bodies[i] = testdata(kFiles[i]);
    if (!parsers[i]->parse(bodies[i].data(), bodies[i].len, bodies[i].capacity(), &reqs[i]).ok()) std::abort();
  }
  Decision d;
  int i = 0, bids = 0;
  for (auto _ : state) {
    run_auction(*index, reqs[i], &d);
    bids += d.any();
    benchmark::DoNotOptimize(d);
    i = i == 4 ? 0 : i + 1;
  }
  state.SetLabel(std::to_string(state.range(0)) + " campaigns, " +
                 std::to_string(100 * bids / std::max<std::int64_t>(1, state.iterations())) + "% bid");
}
BENCHMARK(BM_Auction)->Arg(10)->Arg(1000)->Arg(10'000);

// Parse + auction, the whole decision core per request.
void BM_ParseAndAuction(benchmark::State& state) {
  auto index = synthetic(static_cast<int>(state.range(0)));
  BidRequestParser parser(16 * 1024);
  PaddedBody bodies[5];
  for (int i = 0; i < 5; ++i) bodies[i] = testdata(kFiles[i]);
  BidRequest req;
  Decision d;
  int i = 0;
  for (auto _ : state) {
    const PaddedBody& b = bodies[i];
    if (parser.parse(b.data(), b.len, b.capacity(), &req).ok()) run_auction(*index, req, &d);
    benchmark::DoNotOptimize(d);
    i = i == 4 ? 0 : i + 1;
  }
  state.SetLabel(std::to_string(state.range(0)) + " campaigns");
}
BENCHMARK(BM_ParseAndAuction)->Arg(10)->Arg(10'000);

// The BidResponse of one bid: ids and three signed notice URLs escaped per response (as the
// bidder's URLs: about 190 bytes each), the creative's part pre-escaped at load.
void BM_WriteResponse(benchmark::State& state) {
  Campaign campaign;
  campaign.id = "acme-shoes-na";
  Creative cr;
  cr.crid = "acme-300x250";
  cr.type = CreativeType::kBanner;
  cr.w = 300;
  cr.h = 250;
  cr.adomain = {"acme.example"};
  cr.adm = "<a href=\"https://acme.example/shoes?src=rtb\"><img src=\"https://cdn.acme.example/300x250.jpg\" "
           "width=\"300\" height=\"250\" alt=\"Acme running shoes\"></a>";
  campaign.creatives.push_back(cr);
  prewrite_bid_tails(&campaign);
  const std::string query = "?b=0-1234567&c=acme-shoes-na&i=1&s=0&e=1796400000000&sig=" + std::string(64, 'f');
  const std::string nurl = "http://127.0.0.1:8080/openrtb2/win" + query + "&price=${AUCTION_PRICE}";
  const std::string burl = "http://127.0.0.1:8080/openrtb2/bill" + query + "&price=${AUCTION_PRICE}";
  const std::string lurl = "http://127.0.0.1:8080/openrtb2/loss" + query;
  ResponseBid bid;
  bid.id = "0-1234567";
  bid.imp_id = "1";
  bid.price = 2'500'000;
  bid.nurl = nurl;
  bid.burl = burl;
  bid.lurl = lurl;
  bid.campaign = &campaign;
  bid.creative = &campaign.creatives[0];
  char out[4096];
  std::size_t n = 0;
  for (auto _ : state) {
    n = write_bid_response("a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "seat-1", std::span(&bid, 1), out, sizeof out);
    benchmark::DoNotOptimize(out);
  }
  state.SetLabel(std::to_string(n) + " bytes");
}
BENCHMARK(BM_WriteResponse);

}  // namespace
}  // namespace mnv::rtb

BENCHMARK_MAIN();
