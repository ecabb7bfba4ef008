// apps/rtb/auction.cc — the merge of an impression's posting lists and the filters (auction.h).
#include "apps/rtb/auction.h"

#include <cassert>
#include <span>

namespace mnv::rtb {

const char* no_bid_name(NoBidReason r) {
  switch (r) {
    case NoBidReason::kNone: return "none";
    case NoBidReason::kCurrency: return "currency";
    case NoBidReason::kNoSlot: return "no_slot";
    case NoBidReason::kNoCampaign: return "no_campaign";
    case NoBidReason::kDevice: return "device";
    case NoBidReason::kSite: return "site";
    case NoBidReason::kCategory: return "category";
    case NoBidReason::kAdvertiser: return "advertiser";
    case NoBidReason::kBelowFloor: return "below_floor";
    case NoBidReason::kCount: break;
  }
  return "?";
}

int no_bid_nbr(NoBidReason r) {
  switch (r) {
    case NoBidReason::kDevice: return 6;  // unsupported device
    case NoBidReason::kSite: return 7;    // blocked publisher or site
    default: return 0;                    // unknown error: OpenRTB has no closer code
  }
}

bool Decision::any() const {
  for (const ImpDecision& d : imps) {
    if (!d.candidates.empty()) return true;
  }
  return false;
}

NoBidReason Decision::reason() const {
  if (any() || imps.empty()) return NoBidReason::kNone;
  return imps[0].reason;
}

namespace {

// Why `campaign`'s `creative` may not bid on `imp` of `req`; kNone when it may (the floor and the
// slot were checked by the caller).
NoBidReason reject(const Campaign& c, const Creative& cr, const BidRequest& req, const Imp& imp) {
  if (c.device_types != 0) {
    int t = req.device.devicetype;
    if (t <= 0 || t > 31 || (c.device_types & (1u << t)) == 0) return NoBidReason::kDevice;
  }
  const Publisher& pub = req.publisher;
  if (!c.sites.empty() || !c.apps.empty()) {
    bool allowed = false;
    if (pub.channel == Channel::kSite) {
      for (const std::string& s : c.sites) allowed = allowed || domain_covers(s, pub.domain);
    } else if (pub.channel == Channel::kApp) {
      for (const std::string& a : c.apps) allowed = allowed || a == pub.bundle;
    }
    if (!allowed) return NoBidReason::kSite;
  }
  if (pub.channel == Channel::kSite) {
    for (const std::string& s : c.exclude_sites) {
      if (domain_covers(s, pub.domain)) return NoBidReason::kSite;
    }
  } else if (pub.channel == Channel::kApp) {
    for (const std::string& a : c.exclude_apps) {
      if (a == pub.bundle) return NoBidReason::kSite;
    }
  }
  for (const std::string& ex : c.exclude_categories) {
    for (std::string_view cat : pub.cat) {
      if (category_covers(ex, cat)) return NoBidReason::kCategory;
    }
  }
  for (std::string_view blocked : req.bcat) {
    for (const std::string& cat : c.categories) {
      if (category_covers(blocked, cat)) return NoBidReason::kCategory;
    }
  }
  if (cr.type == CreativeType::kVideo) {
    bool takes = false;
    for (std::string_view m : imp.video.mimes) takes = takes || m == cr.mime;
    if (!takes) return NoBidReason::kNoCampaign;
  }
  for (std::string_view blocked : req.badv) {
    for (const std::string& d : cr.adomain) {
      if (domain_covers(blocked, d)) return NoBidReason::kAdvertiser;
    }
  }
  return NoBidReason::kNone;
}

// The posting lists an impression reads: per slot, its country's and the any-country one.
constexpr int kMaxLists = (kMaxFormats + 2) * 2;

struct Lists {
  std::span<const Posting> list[kMaxLists];
  int count = 0;
  void add(std::span<const Posting> s) {
    assert(count < kMaxLists);
    if (!s.empty()) list[count++] = s;
  }
};

void decide_imp(const CampaignIndex& index, const BidRequest& req, const Imp& imp, std::uint32_t country,
                ImpDecision* out) {
  Micros floor = 0;
  if (!index.to_usd(imp.bidfloor, imp.bidfloorcur, &floor)) {
    out->reason = NoBidReason::kCurrency;
    return;
  }
  Lists lists;
  bool any_slot = false;
  auto add_slot = [&](std::uint32_t slot) {
    any_slot = true;
    lists.add(index.find(slot, country));
    if (country != 0) lists.add(index.find(slot, 0));
  };
  if (imp.banner.present) {
    for (const Size& s : imp.banner.formats) {
      if (s.w != 0 && s.h != 0) add_slot(SlotKey::banner(s.w, s.h));
    }
  }
  if (imp.video.present) add_slot(SlotKey::kVideo);
  if (imp.native) add_slot(SlotKey::kNative);
  if (!any_slot) {
    out->reason = NoBidReason::kNoSlot;
    return;
  }
  // Merge the lists, highest bid first (ties: the campaign earlier in the file).
  int at[kMaxLists] = {};
  NoBidReason first_rejection = NoBidReason::kNone;
  bool any_posting = false;
  for (int examined = 0; examined < kMaxExamined && !out->candidates.full(); ++examined) {
    int best = -1;
    for (int i = 0; i < lists.count; ++i) {
      if (at[i] == static_cast<int>(lists.list[i].size())) continue;
      const Posting& p = lists.list[i][at[i]];
      if (best < 0) {
        best = i;
        continue;
      }
      const Posting& b = lists.list[best][at[best]];
      if (p.bid > b.bid || (p.bid == b.bid && p.campaign < b.campaign)) best = i;
    }
    if (best < 0) break;
    const Posting& p = lists.list[best][at[best]++];
    any_posting = true;
    if (p.bid < floor) break;  // every posting left bids less
    const Campaign& c = index.campaign(p.campaign);
    bool seen = false;
    for (const Candidate& k : out->candidates) seen = seen || k.campaign == &c;
    if (seen) continue;
    const Creative& cr = c.creatives[p.creative];
    NoBidReason why = reject(c, cr, req, imp);
    if (why != NoBidReason::kNone) {
      if (first_rejection == NoBidReason::kNone) first_rejection = why;
      continue;
    }
    Candidate& k = out->candidates.push();
    k.campaign = &c;
    k.creative = &cr;
    k.price = c.bid_cpm;
  }
  if (!out->candidates.empty()) return;
  if (first_rejection != NoBidReason::kNone) {
    out->reason = first_rejection;
  } else {
    out->reason = any_posting ? NoBidReason::kBelowFloor : NoBidReason::kNoCampaign;
  }
}

}  // namespace

void run_auction(const CampaignIndex& index, const BidRequest& req, Decision* out) {
  out->imps.clear();
  bool usd = req.cur.empty();
  for (std::string_view c : req.cur) usd = usd || c == "USD";
  std::uint32_t country = country_key(req.device.country);
  for (const Imp& imp : req.imp) {
    ImpDecision& d = out->imps.push();
    d.candidates.clear();
    d.reason = NoBidReason::kNone;
    if (!usd) {
      d.reason = NoBidReason::kCurrency;
      continue;
    }
    decide_imp(index, req, imp, country, &d);
  }
}

}  // namespace mnv::rtb
