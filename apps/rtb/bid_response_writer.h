// apps/rtb/bid_response_writer.h — an OpenRTB 2.6 BidResponse written straight into the caller's
// buffer (the connection's send buffer): no allocation, no intermediate document.
//
// The server chooses which candidate of each impression bids (auction.h, then pacing, caps and
// budget) and builds the notice URLs (signed; they are passed through as given, JSON-escaped);
// this file only writes:
//
//   {"id":REQUEST_ID,"seatbid":[{"seat":SEAT,"bid":[{"id","impid","price","nurl","burl","lurl",
//    "adm","adomain":[..],"crid","cid","w","h","mtype"},...]}],"cur":"USD"}
//
// or, for a no-bid answered with a body, {"id":REQUEST_ID,"nbr":N}. Prices are micro-USD CPM
// written as exact decimals ("2.5"). Strings are escaped per RFC 8259.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "apps/rtb/campaigns.h"
#include "apps/rtb/money.h"

namespace mnv::rtb {

struct ResponseBid {
  std::string_view id;      // the bid's id (the server's, unique)
  std::string_view imp_id;  // the impression it bids on
  Micros price = 0;         // micro-USD CPM, 0..kMaxCpmMicros
  std::string_view nurl, burl, lurl;  // notice URLs; "" leaves a field out
  const Campaign* campaign = nullptr;  // cid
  const Creative* creative = nullptr;  // adm, adomain, crid, w, h, mtype
};

// Writes a BidResponse with `bids` (at least one) under one seatbid (`seat` "" leaves it out)
// into out[0..cap); returns its length, or 0 when it does not fit (nothing past cap is written).
std::size_t write_bid_response(std::string_view request_id, std::string_view seat, std::span<const ResponseBid> bids,
                               char* out, std::size_t cap);

// Fills each creative's bid_tail (campaigns.h) with its part of a bid, escaped once, so a bid
// copies it instead of escaping adm, adomain, crid and cid again. At load, not per request.
void prewrite_bid_tails(Campaign* campaign);

// Writes {"id":REQUEST_ID,"nbr":NBR}; returns its length, or 0 when it does not fit.
std::size_t write_no_bid_response(std::string_view request_id, int nbr, char* out, std::size_t cap);

}  // namespace mnv::rtb
