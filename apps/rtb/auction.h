// apps/rtb/auction.h — per impression, the campaigns that may bid on it, highest price first,
// or why none may (an OpenRTB no-bid reason).
//
// Pure: reads a request and an index, writes a Decision the caller owns; no state, no allocation.
// The server then applies what needs shard state (pacing, the frequency cap, a budget
// reservation) to the candidates in order and bids with the first that passes — which is why
// the auction returns up to kMaxCandidates in price order, not only the winner.
//
// Rules (the issue's): a candidate's price (its campaign's bid CPM) is at least the impression's
// floor in USD (a floor in another currency converts through the campaigns file's [rates], else
// no bid); a request whose cur[] lacks USD gets no bid; bcat blocks campaigns by their
// categories; badv blocks creatives by adomain; targeting by country, device type, site/app
// allow and deny lists, excluded site/app categories; a video creative's mime must be one the
// impression takes. At most kMaxExamined postings are looked at per impression, so one
// impression's cost is bounded whatever the campaigns.
#pragma once

#include <cstdint>

#include "apps/rtb/bid_request.h"
#include "apps/rtb/campaign_index.h"

namespace mnv::rtb {

inline constexpr int kMaxCandidates = 8;
inline constexpr int kMaxExamined = 256;

enum class NoBidReason : std::uint8_t {
  kNone,        // (a bid)
  kCurrency,    // cur[] without USD, or a floor currency without a rate
  kNoSlot,      // the impression offers no banner size, video or native
  kNoCampaign,  // no campaign has a creative for its slots in its country
  kDevice,      // the best campaign does not target the device type
  kSite,        // ... is not allowed on the site/app, or excludes it
  kCategory,    // ... excludes the site/app's category, or is in a category bcat blocks
  kAdvertiser,  // ... has only creatives whose adomain badv blocks
  kBelowFloor,  // every fitting campaign bids under the floor
  kCount,
};

// A short name for metrics labels ("below_floor").
const char* no_bid_name(NoBidReason reason);
// The OpenRTB no-bid reason code (nbr) for a BidResponse or a count: 7 blocked publisher or site
// for kSite, 6 unsupported device for kDevice, 0 (unknown) for those OpenRTB has no code for.
int no_bid_nbr(NoBidReason reason);

struct Candidate {
  const Campaign* campaign = nullptr;
  const Creative* creative = nullptr;
  Micros price = 0;  // micro-USD CPM
};

struct ImpDecision {
  FixedList<Candidate, kMaxCandidates> candidates;  // highest price first; one per campaign
  NoBidReason reason = NoBidReason::kNone;          // set when candidates is empty
};

struct Decision {
  FixedList<ImpDecision, kMaxImps> imps;  // one per request.imp, in order
  // Whether any impression has a candidate.
  bool any() const;
  // The first impression's reason when none has a candidate (kNone otherwise).
  NoBidReason reason() const;
};

// Decides every impression of `request` (a parsed, valid request) against `index`.
void run_auction(const CampaignIndex& index, const BidRequest& request, Decision* out);

}  // namespace mnv::rtb
