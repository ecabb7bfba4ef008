// perf/rtb_mix.h — a seeded, realistic mix of OpenRTB 2.6 bid requests for load runs, written by
// us from the spec (IAB openrtb2.x 2.6.md; /work/shared/notes/openrtb.md), generated in advance
// so building them never limits the rate.
//
// The mix: site (news.example.com ...) and app (com.example.game ...) traffic; 1 to 4 impressions
// each banner (300x250, 728x90, 320x50, 160x600, 300x600, 970x250, often several formats), video
// (640x360 or 1280x720, video/mp4) or native; floors from none to a few dollars CPM; countries
// USA, GBR, DEU, FRA, CAN, JPN, BRA, IND (GDPR and a consent string for the European ones);
// users drawn from a Zipf distribution over `users` ids (so a few users come back often and
// frequency caps bind); some requests block categories (bcat IAB25, IAB26); tmax from 80 to
// 300 ms; a supply chain; and a share of malformed requests (truncated JSON, no imp, an imp
// without id, a floor that is a string, not JSON at all), which a bidder must answer 400.
// Bodies average about 1.8 KB, as real traffic does. The same seed gives the same bodies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mnv::perf {

struct RtbMixOptions {
  std::uint64_t seed = 1;
  int count = 10000;              // bodies to generate
  double malformed_share = 0.01;  // of the bodies, malformed ones (0..1)
  int users = 100000;             // distinct user ids
  double zipf_s = 1.1;            // the Zipf exponent of user popularity
};

struct RtbMix {
  std::vector<std::string> bodies;  // each one line (no raw newline), JSON except the malformed
  std::vector<int> tmax_ms;         // each body's tmax (the malformed: 100), for timeouts
  std::size_t malformed = 0;
  double mean_bytes = 0;
};

RtbMix make_rtb_mix(const RtbMixOptions& opt);

// The HTTP side of a bid request: the path, and the header lines to send with each body.
inline constexpr const char* kRtbPath = "/openrtb2/bid";
inline constexpr const char* kRtbFields = "Content-Type: application/json\r\nx-openrtb-version: 2.6\r\n";

}  // namespace mnv::perf
