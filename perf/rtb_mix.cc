// perf/rtb_mix.cc — the seeded OpenRTB 2.6 request mix (rtb_mix.h).
#include "perf/rtb_mix.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>

namespace mnv::perf {
namespace {

// splitmix64: small, fast, and the same on every platform (std's distributions are not).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  int below(int n) { return static_cast<int>(next() % static_cast<std::uint64_t>(n)); }
  bool chance(double p) { return unit() < p; }
  // An index into `weights` (summing to anything > 0), drawn by weight.
  template <std::size_t N>
  int pick(const double (&weights)[N]) {
    double total = 0;
    for (double w : weights) total += w;
    double x = unit() * total;
    for (std::size_t i = 0; i < N; ++i) {
      if (x < weights[i]) return static_cast<int>(i);
      x -= weights[i];
    }
    return static_cast<int>(N - 1);
  }

 private:
  std::uint64_t s_;
};

void add(std::string* out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void add(std::string* out, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  out->append(buf, static_cast<std::size_t>(std::min(n, static_cast<int>(sizeof buf) - 1)));
}

struct SizeWH {
  int w, h;
};
constexpr SizeWH kBanners[] = {{300, 250}, {728, 90}, {320, 50}, {160, 600}, {300, 600}, {970, 250}};
constexpr double kBannerWeights[] = {35, 20, 20, 8, 9, 8};
constexpr SizeWH kVideos[] = {{640, 360}, {1280, 720}};
constexpr const char* kCountries[] = {"USA", "GBR", "DEU", "FRA", "CAN", "JPN", "BRA", "IND"};
constexpr double kCountryWeights[] = {40, 10, 9, 8, 8, 9, 8, 8};
constexpr const char* kRegions[] = {"CA", "ENG", "BE", "IDF", "ON", "13", "SP", "MH"};
constexpr const char* kCities[] = {"Los Angeles", "London", "Berlin", "Paris", "Toronto", "Tokyo", "Sao Paulo", "Mumbai"};
constexpr const char* kLanguages[] = {"en", "en", "de", "fr", "en", "ja", "pt", "hi"};
constexpr const char* kDomains[] = {"news.example.com",    "sports.example.com", "weather.example.com",
                                    "recipes.example.org", "travel.example.net", "tech.example.com",
                                    "finance.example.com", "video.example.tv"};
constexpr const char* kDomainCats[] = {"IAB12", "IAB17", "IAB15-10", "IAB8", "IAB20", "IAB19", "IAB13", "IAB1-5"};
constexpr const char* kBundles[] = {"com.example.game",  "com.example.news",   "com.example.weather",
                                    "com.example.music", "com.example.puzzle", "com.example.social"};
constexpr const char* kBundleCats[] = {"IAB9-30", "IAB12", "IAB15-10", "IAB1-6", "IAB9-30", "IAB14"};
constexpr const char* kSiteUas[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
    "Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.163 Mobile "
    "Safari/537.36",
};
constexpr const char* kAppUas[] = {
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/119.0.6045.163 Mobile Safari/537.36",
};
constexpr int kTmax[] = {80, 100, 120, 150, 200, 300};
constexpr double kTmaxWeights[] = {10, 25, 30, 15, 15, 5};
// A TCF v2 consent string's shape (base64url), as GDPR traffic carries one.
constexpr const char* kConsent =
    "CPz8T0AQz8T0ADrABCENDgCsAP_AAH_AAAqIJNNd_H__bW9r-f5_aft0eY1P9_r37uQzDhfNk-8F3L_W_LwX52E7NF36tq4KmR4ku1LBIUNlHMHU"
    "DUmwaokVryHsak2cpzNKJ7BEknMZe2dYGF9vm5tj-QKY7_5_d3bx2D-t_9v-39z3z81Xn3d53-_03LCdV5_9Dfn9fR_bc9KPt_58v8v8_____3_e__3_"
    "7997BAA";

// The Zipf CDF over user ranks 1..n: P(rank k) ~ 1 / k^s.
std::vector<double> zipf_cdf(int n, double s) {
  std::vector<double> cdf(static_cast<std::size_t>(n));
  double sum = 0;
  for (int k = 1; k <= n; ++k) {
    sum += 1.0 / std::pow(static_cast<double>(k), s);
    cdf[static_cast<std::size_t>(k - 1)] = sum;
  }
  for (double& c : cdf) c /= sum;
  return cdf;
}

int zipf_draw(const std::vector<double>& cdf, Rng& rng) {
  double x = rng.unit();
  return static_cast<int>(std::lower_bound(cdf.begin(), cdf.end(), x) - cdf.begin()) + 1;
}

void add_uuid(std::string* out, Rng& rng) {
  std::uint64_t a = rng.next(), b = rng.next();
  add(out, "%08llx-%04llx-4%03llx-a%03llx-%012llx", static_cast<unsigned long long>(a >> 32),
      static_cast<unsigned long long>((a >> 16) & 0xffff), static_cast<unsigned long long>(a & 0xfff),
      static_cast<unsigned long long>(b >> 52), static_cast<unsigned long long>(b & 0xffffffffffffULL));
}

// A floor in USD CPM: none for a fifth, else 0.05 .. ~5, most under 1.
double floor_usd(Rng& rng) {
  if (rng.chance(0.2)) return 0;
  double f = 0.05 * std::exp(rng.unit() * std::log(100.0));  // log-uniform 0.05 .. 5
  return std::round(f * 100) / 100;
}

void add_imp(std::string* out, Rng& rng, int index, bool app) {
  add(out, "{\"id\":\"%d\",", index + 1);
  double kind = rng.unit();
  if (kind < 0.70) {
    int main = rng.pick(kBannerWeights);
    int nformats = rng.chance(0.45) ? 1 + rng.below(2) : 0;
    add(out, "\"banner\":{\"w\":%d,\"h\":%d,\"format\":[{\"w\":%d,\"h\":%d}", kBanners[main].w, kBanners[main].h,
        kBanners[main].w, kBanners[main].h);
    for (int f = 0; f < nformats; ++f) {
      const SizeWH& s = kBanners[rng.below(6)];
      add(out, ",{\"w\":%d,\"h\":%d}", s.w, s.h);
    }
    add(out, "],\"pos\":%d,\"api\":[3,5],\"battr\":[1,3,8]},", rng.chance(0.5) ? 1 : 3);
  } else if (kind < 0.85) {
    const SizeWH& v = kVideos[rng.below(2)];
    add(out,
        "\"video\":{\"mimes\":[\"video/mp4\"%s],\"minduration\":5,\"maxduration\":30,\"protocols\":[2,3,5,6],"
        "\"w\":%d,\"h\":%d,\"startdelay\":0,\"plcmt\":%d,\"linearity\":1,\"skip\":1,\"skipafter\":5,"
        "\"playbackmethod\":[%d],\"api\":[2,7]},",
        rng.chance(0.3) ? ",\"video/webm\"" : "", v.w, v.h, app ? 1 : 2, rng.chance(0.5) ? 1 : 6);
  } else {
    add(out,
        "\"native\":{\"request\":\"{\\\"ver\\\":\\\"1.2\\\",\\\"context\\\":1,\\\"plcmttype\\\":1,\\\"assets\\\":["
        "{\\\"id\\\":1,\\\"required\\\":1,\\\"title\\\":{\\\"len\\\":90}},{\\\"id\\\":2,\\\"required\\\":1,"
        "\\\"img\\\":{\\\"type\\\":3,\\\"wmin\\\":1200,\\\"hmin\\\":627}},{\\\"id\\\":3,\\\"data\\\":{\\\"type\\\":2,"
        "\\\"len\\\":140}}]}\",\"ver\":\"1.2\"},");
  }
  double fl = floor_usd(rng);
  if (fl > 0) add(out, "\"bidfloor\":%.2f,\"bidfloorcur\":\"USD\",", fl);
  int slot = rng.below(40) + 1;
  add(out, "\"tagid\":\"%s-slot-%d\",\"secure\":1,\"instl\":0,\"ext\":{\"gpid\":\"/21799830/%s/slot-%d\"}}",
      app ? "app" : "site", slot, app ? "app" : "site", slot);
}

std::string good_request(Rng& rng, const std::vector<double>& users, int* tmax) {
  std::string out;
  out.reserve(2600);
  const bool app = rng.chance(0.4);
  const int country = rng.pick(kCountryWeights);
  const bool eu = country >= 1 && country <= 3;
  out += "{\"id\":\"";
  add_uuid(&out, rng);
  out += "\",\"imp\":[";
  double n = rng.unit();
  int imps = n < 0.75 ? 1 : n < 0.90 ? 2 : n < 0.97 ? 3 : 4;
  for (int i = 0; i < imps; ++i) {
    if (i > 0) out += ',';
    add_imp(&out, rng, i, app);
  }
  out += "],";
  if (app) {
    int b = rng.below(6);
    add(&out,
        "\"app\":{\"id\":\"app-%d\",\"name\":\"Example %s\",\"bundle\":\"%s\",\"storeurl\":\"https://play.google.com/"
        "store/apps/details?id=%s\",\"cat\":[\"%s\"],\"ver\":\"3.%d.0\",\"publisher\":{\"id\":\"pub-%d\",\"name\":"
        "\"Example Apps %d\"}},",
        b + 1, kBundles[b] + 12, kBundles[b], kBundles[b], kBundleCats[b], rng.below(9), 100 + b, b);
  } else {
    int d = rng.below(8);
    add(&out,
        "\"site\":{\"id\":\"site-%d\",\"name\":\"%s\",\"domain\":\"%s\",\"page\":\"https://%s/articles/%d/"
        "story.html\",\"ref\":\"https://www.example-search.com/\",\"cat\":[\"%s\"],\"publisher\":{\"id\":"
        "\"pub-%d\",\"name\":\"Example Media %d\",\"domain\":\"%s\"}},",
        d + 1, kDomains[d], kDomains[d], kDomains[d], 10000 + rng.below(90000), kDomainCats[d], 200 + d, d,
        kDomains[d]);
  }
  const int ua_index = app ? rng.below(2) : rng.below(3);
  const char* ua = app ? kAppUas[ua_index] : kSiteUas[ua_index];
  const bool ios = app && ua_index == 0;
  add(&out, "\"device\":{\"ua\":\"%s\",\"ip\":\"%d.%d.%d.%d\",", ua, 11 + rng.below(200), rng.below(256),
      rng.below(256), 1 + rng.below(254));
  if (app) {
    out += "\"ifa\":\"";
    add_uuid(&out, rng);
    out += "\",";
  }
  // The structured user agent (2.6 device.sua), as Chromium-based browsers send it.
  add(&out,
      "\"sua\":{\"source\":2,\"platform\":{\"brand\":\"%s\",\"version\":[\"%d\",\"0\"]},\"browsers\":["
      "{\"brand\":\"Chromium\",\"version\":[\"119\",\"0\",\"6045\",\"163\"]},{\"brand\":\"Google "
      "Chrome\",\"version\":[\"119\",\"0\",\"6045\",\"163\"]},{\"brand\":\"Not?A_Brand\",\"version\":["
      "\"24\",\"0\",\"0\",\"0\"]}],\"mobile\":%d,\"architecture\":\"x86\",\"model\":\"\"},",
      ios ? "iOS" : app ? "Android" : "Windows", ios ? 17 : app ? 13 : 10, app ? 1 : 0);
  add(&out,
      "\"devicetype\":%d,\"make\":\"%s\",\"os\":\"%s\",\"language\":\"%s\",\"js\":1,\"connectiontype\":2,"
      "\"geo\":{\"country\":\"%s\",\"region\":\"%s\",\"city\":\"%s\",\"lat\":%.4f,\"lon\":%.4f,\"type\":2}},",
      app ? 4 : (rng.chance(0.6) ? 2 : 4), ios ? "Apple" : app ? "Samsung" : "Generic",
      ios ? "iOS" : app ? "Android" : "Windows", kLanguages[country],
      kCountries[country], kRegions[country], kCities[country], -60 + rng.unit() * 120, -170 + rng.unit() * 340);
  int user = zipf_draw(users, rng);
  add(&out, "\"user\":{\"id\":\"u-%d\",\"buyeruid\":\"bu-%d\"", user, user);
  if (rng.chance(0.6)) {  // extended ids from identity providers (2.6 user.eids)
    add(&out,
        ",\"eids\":[{\"source\":\"id5-sync.com\",\"uids\":[{\"id\":\"ID5*%016llx%016llx\",\"atype\":1}]},"
        "{\"source\":\"liveramp.com\",\"uids\":[{\"id\":\"XY%016llx%08x\",\"atype\":3}]}]",
        static_cast<unsigned long long>(rng.next()), static_cast<unsigned long long>(rng.next()),
        static_cast<unsigned long long>(rng.next()), static_cast<unsigned>(user));
  }
  if (eu) add(&out, ",\"consent\":\"%s\"", kConsent);
  out += "},";
  *tmax = kTmax[rng.pick(kTmaxWeights)];
  add(&out, "\"at\":%d,\"tmax\":%d,\"cur\":[\"USD\"],", rng.chance(0.7) ? 1 : 2, *tmax);
  if (rng.chance(0.3)) out += "\"bcat\":[\"IAB25\",\"IAB26\"],\"cattax\":1,";
  if (rng.chance(0.2)) out += "\"badv\":[\"competitor.example\",\"blocked.example\"],";
  out += "\"source\":{\"tid\":\"";
  add_uuid(&out, rng);
  add(&out,
      "\",\"schain\":{\"complete\":1,\"ver\":\"1.0\",\"nodes\":[{\"asi\":\"exchange.example\",\"sid\":\"%d\","
      "\"hp\":1},{\"asi\":\"reseller.example\",\"sid\":\"r-%d\",\"hp\":1}]}},",
      1000 + rng.below(9000), rng.below(500));
  add(&out, "\"regs\":{\"coppa\":0,\"gdpr\":%d%s}}", eu ? 1 : 0, country == 0 ? ",\"us_privacy\":\"1YNN\"" : "");
  return out;
}

std::string malformed_request(Rng& rng, const std::vector<double>& users) {
  int tmax = 0;
  std::string good = good_request(rng, users, &tmax);
  switch (rng.below(5)) {
    case 0:  // truncated
      return good.substr(0, good.size() / 2);
    case 1: {  // no imp: the required array replaced by an empty one
      std::size_t a = good.find("\"imp\":[");
      std::size_t b = good.find("],\"site\"");
      if (b == std::string::npos) b = good.find("],\"app\"");
      return good.substr(0, a) + "\"imp\":[" + good.substr(b);
    }
    case 2: {  // the first imp has no id
      std::size_t a = good.find("{\"id\":\"1\",");
      return good.substr(0, a + 1) + good.substr(a + 10);
    }
    case 3:  // a floor that is a string
      return "{\"id\":\"bad-floor\",\"imp\":[{\"id\":\"1\",\"banner\":{\"w\":300,\"h\":250},\"bidfloor\":\"abc\"}],"
             "\"site\":{\"domain\":\"news.example.com\"},\"tmax\":120}";
    default:
      return "this is not JSON: " + good.substr(0, 64);
  }
}

}  // namespace

RtbMix make_rtb_mix(const RtbMixOptions& opt) {
  RtbMix mix;
  Rng rng(opt.seed);
  const std::vector<double> users = zipf_cdf(opt.users > 0 ? opt.users : 1, opt.zipf_s);
  double bytes = 0;
  mix.bodies.reserve(static_cast<std::size_t>(opt.count > 0 ? opt.count : 0));
  for (int i = 0; i < opt.count; ++i) {
    int tmax = 100;
    if (rng.chance(opt.malformed_share)) {
      mix.bodies.push_back(malformed_request(rng, users));
      ++mix.malformed;
    } else {
      mix.bodies.push_back(good_request(rng, users, &tmax));
    }
    mix.tmax_ms.push_back(tmax);
    bytes += static_cast<double>(mix.bodies.back().size());
  }
  mix.mean_bytes = opt.count > 0 ? bytes / opt.count : 0;
  return mix;
}

}  // namespace mnv::perf
