// apps/rtb/campaigns.h — the campaigns a bidder buys for, read and checked from a TOML file.
//
// Why a checked file: a typo in targeting silently widens what a campaign buys, and a float in a
// budget loses money; so every key is known, every value is checked, money is integer micro-USD,
// and a bad file is refused whole with one line per problem, naming the file, the line, the
// campaign and the field:
//
//   campaigns.toml: line 14: campaign "acme-shoes-us": bid_cpm_micros = -5: must be an integer
//   from 1 to 1000000000000
//
// The format (apps/rtb/campaigns.toml is the sample):
//
//   [rates]                        # optional: micro-USD per unit of another bidfloorcur
//   EUR = 1_080_000
//
//   [[campaign]]
//   id = "acme-shoes-us"           # unique
//   total_budget_micros = 50_000_000_000
//   daily_budget_micros = 2_000_000_000      # 1 .. total
//   bid_cpm_micros = 2_500_000               # what a thousand impressions pay: 2.50 USD
//   categories = ["IAB18"]         # the ads' own IAB categories (request bcat blocks them)
//   countries = ["USA", "CAN"]     # ISO alpha-3; absent or empty: every country
//   device_types = [1, 2, 4, 5]    # OpenRTB device types 1..7; absent: all
//   sites = ["news.example.com"]   # allow lists (a site domain covers its subdomains; an app
//   apps = ["com.example.game"]    #   bundle is exact): when either is given, only what they list
//   exclude_sites = [], exclude_apps = []
//   exclude_categories = ["IAB25"] # site/app categories not to appear on (IAB25 covers IAB25-3)
//   freq_cap = { impressions = 3, window_s = 86400 }   # optional
//   [[campaign.creative]]
//   crid = "acme-300x250"
//   type = "banner"                # banner (w, h required) | video (mime required) | native
//   w = 300
//   h = 250
//   adomain = ["acme.example"]
//   adm = "<a href=...>...</a>"
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "apps/rtb/money.h"

namespace mnv::rtb {

inline constexpr int kMaxCampaigns = 100'000;
inline constexpr int kMaxCreativesPerCampaign = 16;

// OpenRTB bid.mtype values.
enum class CreativeType : std::uint8_t { kBanner = 1, kVideo = 2, kNative = 4 };

struct Creative {
  std::string crid;
  CreativeType type = CreativeType::kBanner;
  std::uint16_t w = 0, h = 0;  // banner: the size it fills; video/native: optional
  std::string mime;            // video: e.g. "video/mp4"
  std::vector<std::string> adomain;
  std::string adm;
  // Its part of every bid it makes, "adm" to the closing brace, JSON-escaped once at load
  // (bid_response_writer.h: prewrite_bid_tails()); "" until then (the writer then escapes it each time).
  std::string bid_tail;
};

struct FrequencyCap {
  std::uint32_t impressions = 0;  // 0: no cap
  std::uint32_t window_s = 0;
  bool enabled() const { return impressions != 0; }
};

struct Campaign {
  std::uint32_t index = 0;  // position in CampaignSet::campaigns
  std::string id;
  Micros total_budget = 0, daily_budget = 0, bid_cpm = 0;
  std::vector<std::string> categories;
  std::vector<std::string> countries;  // empty: every country
  std::uint32_t device_types = 0;      // bit N set: devicetype N allowed; 0: all
  std::vector<std::string> sites, apps, exclude_sites, exclude_apps;
  std::vector<std::string> exclude_categories;
  FrequencyCap freq_cap;
  std::vector<Creative> creatives;
  std::string at;  // "FILE: line N", where the campaign's table starts
};

// A currency other than USD that a floor may be in, and its worth.
struct Rate {
  std::string currency;           // ISO 4217, e.g. "EUR"
  Micros micros_per_unit = 0;     // micro-USD for one unit
};

struct CampaignSet {
  std::vector<Campaign> campaigns;  // in file order; campaigns[i].index == i
  std::vector<Rate> rates;
};

// Reads campaigns from TOML `text`; `source` (the path) starts every message. False with *error
// (one problem per line, in line order) and *out unchanged when anything is wrong.
bool parse_campaigns(std::string_view text, std::string_view source, CampaignSet* out, std::string* error);
// The same from a file (at most 64 MiB).
bool load_campaigns(const std::string& path, CampaignSet* out, std::string* error);

// Whether IAB category `parent` covers `cat` ("IAB25" covers "IAB25" and "IAB25-3").
bool category_covers(std::string_view parent, std::string_view cat);
// Whether site domain `listed` covers `name` ("example.com" covers "news.example.com").
bool domain_covers(std::string_view listed, std::string_view name);

}  // namespace mnv::rtb
