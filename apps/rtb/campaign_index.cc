// apps/rtb/campaign_index.cc — building the posting lists (see campaign_index.h).
#include "apps/rtb/campaign_index.h"

#include <algorithm>
#include <cassert>

namespace mnv::rtb {

std::uint32_t country_key(std::string_view s) {
  if (s.size() != 3) return 0;
  std::uint32_t k = 0;
  for (char c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c < 'A' || c > 'Z') return 0;
    k = (k << 8) | static_cast<unsigned char>(c);
  }
  return k;
}

namespace {

std::uint32_t slot_of(const Creative& c) {
  switch (c.type) {
    case CreativeType::kBanner: return SlotKey::banner(c.w, c.h);
    case CreativeType::kVideo: return SlotKey::kVideo;
    case CreativeType::kNative: return SlotKey::kNative;
  }
  return 0;
}

}  // namespace

std::shared_ptr<const CampaignIndex> CampaignIndex::build(CampaignSet set) {
  std::shared_ptr<CampaignIndex> index(new CampaignIndex());
  struct Entry {
    std::uint64_t key;
    Posting posting;
  };
  std::vector<Entry> entries;
  for (const Campaign& c : set.campaigns) {
    for (std::size_t j = 0; j < c.creatives.size(); ++j) {
      std::uint64_t slot = slot_of(c.creatives[j]);
      Posting p{c.index, static_cast<std::uint16_t>(j), c.bid_cpm};
      if (c.countries.empty()) {
        entries.push_back({slot << 32, p});
      } else {
        for (const std::string& country : c.countries) entries.push_back({(slot << 32) | country_key(country), p});
      }
    }
  }
  // By key, then highest bid first; ties by campaign order in the file, then creative order.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.key != b.key) return a.key < b.key;
    if (a.posting.bid != b.posting.bid) return a.posting.bid > b.posting.bid;
    if (a.posting.campaign != b.posting.campaign) return a.posting.campaign < b.posting.campaign;
    return a.posting.creative < b.posting.creative;
  });
  index->postings_.reserve(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (i == 0 || entries[i].key != entries[i - 1].key) {
      index->ranges_.push_back({entries[i].key, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i)});
    }
    index->postings_.push_back(entries[i].posting);
    index->ranges_.back().end = static_cast<std::uint32_t>(i + 1);
  }
  index->set_ = std::move(set);
  return index;
}

std::span<const Posting> CampaignIndex::find(std::uint32_t slot, std::uint32_t country) const {
  std::uint64_t key = (std::uint64_t{slot} << 32) | country;
  auto it = std::lower_bound(ranges_.begin(), ranges_.end(), key, [](const Range& r, std::uint64_t k) { return r.key < k; });
  if (it == ranges_.end() || it->key != key) return {};
  return {postings_.data() + it->begin, it->end - it->begin};
}

bool CampaignIndex::to_usd(Micros amount, std::string_view currency, Micros* out) const {
  if (currency == "USD" || currency.empty()) {
    *out = amount;
    return true;
  }
  for (const Rate& r : set_.rates) {
    if (r.currency == currency) {
      *out = convert_micros(amount, r.micros_per_unit);
      return true;
    }
  }
  return false;
}

}  // namespace mnv::rtb
