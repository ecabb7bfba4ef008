// apps/rtb/campaign_index.h — campaigns indexed by what an impression offers, for the auction.
//
// Why an index: a bidder answers in microseconds while holding thousands of campaigns, so it must
// not look at each one per impression. Every creative is posted under the slot it fills (a banner
// size, video, native) and each country its campaign targets (or "any country"); each posting
// list is sorted by bid, highest first. An impression then reads a few short lists, highest
// bids first, and stops as soon as it has enough candidates or the bids fall below its floor:
// 10,000 campaigns cost about what 10 do (campaign_index_bench).
//
// Immutable once built, so one index is shared by every shard by pointer and replaced whole on
// reload (std::shared_ptr<const CampaignIndex>: a shard keeps the old one until it lets go).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "apps/rtb/campaigns.h"
#include "apps/rtb/money.h"

namespace mnv::rtb {

// What an impression offers a creative: a banner size, video, or native.
struct SlotKey {
  static constexpr std::uint32_t kVideo = 0xffff0001u;
  static constexpr std::uint32_t kNative = 0xffff0002u;
  static std::uint32_t banner(std::uint16_t w, std::uint16_t h) { return (std::uint32_t{w} << 16) | h; }
};

// An ISO alpha-3 code as a number; 0 ("any country") for anything else.
std::uint32_t country_key(std::string_view alpha3);

// One creative of one campaign, under one slot and country.
struct Posting {
  std::uint32_t campaign;
  std::uint16_t creative;
  Micros bid;  // the campaign's bid_cpm, kept here so the merge reads one cache line
};

class CampaignIndex {
 public:
  // Indexes `set` (already checked by parse_campaigns).
  static std::shared_ptr<const CampaignIndex> build(CampaignSet set);

  const CampaignSet& set() const { return set_; }
  int size() const { return static_cast<int>(set_.campaigns.size()); }
  const Campaign& campaign(std::uint32_t i) const { return set_.campaigns[i]; }

  // The postings for a slot in a country (country_key; 0: campaigns without a country list),
  // highest bid first; empty when none.
  std::span<const Posting> find(std::uint32_t slot, std::uint32_t country) const;

  // A floor of `amount` micro-units of `currency` in micro-USD (rounded up); false when the
  // currency is neither USD nor in the campaigns file's [rates].
  bool to_usd(Micros amount, std::string_view currency, Micros* out) const;

 private:
  CampaignIndex() = default;
  struct Range {
    std::uint64_t key;  // slot << 32 | country
    std::uint32_t begin, end;
  };
  CampaignSet set_;
  std::vector<Range> ranges_;  // sorted by key
  std::vector<Posting> postings_;
};

}  // namespace mnv::rtb
