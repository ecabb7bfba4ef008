// apps/rtb/fuzz/bid_request_fuzzer.cc — libFuzzer target for an HTTP body on its way to a bid:
// the request parser, the auction over the sample campaigns, and the response writer.
//
// For every input: the parse either succeeds with the required fields set, or fails with a
// non-empty reason; a parsed request's auction gives one decision per impression, candidates in
// price order, each at or above the floor, one per campaign, and a reason where none; a bid's
// response fits a 64 KiB buffer and parses back (simdjson's DOM parser) with the request's id.
// A broken check prints why and aborts, which libFuzzer reports as a crash with the input saved.
// tools/fuzz_rtb.sh builds and runs it; corpus_test.cc replays the seeds (apps/rtb/testdata) in
// every `bazel test`.
#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "apps/rtb/auction.h"
#include "apps/rtb/bid_request_parser.h"
#include "apps/rtb/bid_response_writer.h"

namespace mnv::rtb {
namespace {

constexpr std::size_t kMaxBody = 16 * 1024;

[[noreturn]] void broken(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "BROKEN: %s %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

struct Target {
  std::shared_ptr<const CampaignIndex> index;
  BidRequestParser parser{kMaxBody};
  std::vector<char> body = std::vector<char>(kMaxBody + 1 + BidRequestParser::kPadding);
  std::vector<char> response = std::vector<char>(64 * 1024);
  simdjson::dom::parser check;
  BidRequest req;
  Decision decision;

  Target() {
    const char* path = std::getenv("RTB_CAMPAIGNS");
    CampaignSet set;
    std::string error;
    if (!load_campaigns(path != nullptr ? path : "apps/rtb/campaigns.toml", &set, &error)) broken("campaigns:", error);
    index = CampaignIndex::build(std::move(set));
  }

  void run(const std::uint8_t* data, std::size_t size) {
    if (size > kMaxBody + 1) return;  // one byte over is enough to reach the size check
    std::memcpy(body.data(), data, size);
    ParseResult r = parser.parse(body.data(), size, body.size(), &req);
    if (!r.ok()) {
      if (r.reason.empty() || r.reason.size() >= 320 || r.reason.data()[r.reason.size()] != '\0') broken("reason", r.reason);
      if (size > kMaxBody && r.status != ParseStatus::kTooLarge) broken("an oversized body not refused as too large");
      return;
    }
    if (size > kMaxBody) broken("an oversized body parsed");
    if (req.id.empty() || req.imp.empty()) broken("a request without id or imp parsed");
    for (const Imp& imp : req.imp) {
      if (imp.id.empty()) broken("an imp without id parsed");
      if (imp.bidfloor < 0 || imp.bidfloor > kMaxCpmMicros) broken("a floor out of range");
    }
    run_auction(*index, req, &decision);
    if (decision.imps.size() != req.imp.size()) broken("one decision per impression");
    ResponseBid bids[kMaxImps];
    int n = 0;
    for (int i = 0; i < decision.imps.size(); ++i) {
      const ImpDecision& d = decision.imps[i];
      if (d.candidates.empty()) {
        if (d.reason == NoBidReason::kNone || d.reason >= NoBidReason::kCount) broken("no candidate and no reason");
        continue;
      }
      Micros floor = 0;
      if (!index->to_usd(req.imp[i].bidfloor, req.imp[i].bidfloorcur, &floor)) broken("a bid in an unknown currency");
      for (int k = 0; k < d.candidates.size(); ++k) {
        const Candidate& c = d.candidates[k];
        if (c.price < floor) broken("a candidate under the floor");
        if (k > 0 && c.price > d.candidates[k - 1].price) broken("candidates out of price order");
        for (int j = 0; j < k; ++j) {
          if (d.candidates[j].campaign == c.campaign) broken("a campaign twice");
        }
      }
      ResponseBid& b = bids[n++];
      b.id = "bid";
      b.imp_id = req.imp[i].id;
      b.price = d.candidates[0].price;
      b.nurl = "https://bidder.example/win?p=${AUCTION_PRICE}";
      b.campaign = d.candidates[0].campaign;
      b.creative = d.candidates[0].creative;
    }
    if (n == 0) return;
    std::size_t len = write_bid_response(req.id, "seat", std::span(bids, static_cast<std::size_t>(n)), response.data(),
                                         response.size());
    if (len == 0) broken("a response over 64 KiB");
    simdjson::dom::element doc;
    if (check.parse(response.data(), len).get(doc) != simdjson::SUCCESS) broken("a response that is not JSON");
    std::string_view id;
    if (doc["id"].get_string().get(id) != simdjson::SUCCESS || id != req.id) broken("a response with another id");
  }
};

}  // namespace
}  // namespace mnv::rtb

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static mnv::rtb::Target* target = new mnv::rtb::Target();
  target->run(data, size);
  return 0;
}
