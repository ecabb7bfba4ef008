// apps/rtb/bid_request.h — the fields of an OpenRTB 2.6 BidRequest that the bidder decides on.
//
// Why flat, with fixed limits: a shard parses one request at a time into one BidRequest that it
// owns, so a request costs no allocation; a request with more entries than a limit below is
// refused as too large (413) rather than half-read (a dropped bcat entry would bid on a blocked
// category). Strings are views into the request body or the shard's parser (escaped JSON strings
// are unescaped there): they die at the next parse, so copy what must outlive the request.
// Money is integer micro-USD (money.h). Absent fields read as their OpenRTB default (below).
#pragma once

#include <cassert>
#include <cstdint>
#include <string_view>

#include "apps/rtb/money.h"

namespace mnv::rtb {

// Fixed capacity list: the first `size()` of `N` entries are set.
template <typename T, int N>
class FixedList {
 public:
  static constexpr int kCapacity = N;
  int size() const { return count_; }
  bool empty() const { return count_ == 0; }
  bool full() const { return count_ == N; }
  const T& operator[](int i) const {
    assert(i >= 0 && i < count_);
    return items_[i];
  }
  T& operator[](int i) {
    assert(i >= 0 && i < count_);
    return items_[i];
  }
  const T* begin() const { return items_; }
  const T* end() const { return items_ + count_; }
  // Appends a default entry and returns it; the list must not be full.
  T& push() {
    assert(count_ < N);
    items_[count_] = T{};
    return items_[count_++];
  }
  void clear() { count_ = 0; }

 private:
  T items_[N];
  int count_ = 0;
};

// A view list of strings (categories, currencies, mimes, domains).
template <int N>
using StringList = FixedList<std::string_view, N>;

inline constexpr int kMaxImps = 16;
inline constexpr int kMaxFormats = 16;     // imp.banner.format[]
inline constexpr int kMaxMimes = 16;       // imp.video.mimes[]
inline constexpr int kMaxCategories = 64;  // site/app.cat[], bcat[]
inline constexpr int kMaxBadv = 64;        // badv[]
inline constexpr int kMaxCurrencies = 8;   // cur[]

struct Size {
  std::uint16_t w = 0, h = 0;
  friend bool operator==(Size a, Size b) { return a.w == b.w && a.h == b.h; }
};

struct Banner {
  bool present = false;
  // format[] when given; else the one size banner.w x banner.h when both are set.
  FixedList<Size, kMaxFormats> formats;
};

struct Video {
  bool present = false;
  Size size;  // w, h: 0 when absent
  StringList<kMaxMimes> mimes;
};

struct Imp {
  std::string_view id;  // required, non-empty
  Banner banner;
  Video video;
  bool native = false;      // an imp.native object is present
  Micros bidfloor = 0;      // in bidfloorcur units (micro-units), rounded up
  std::string_view bidfloorcur = "USD";
  std::string_view tagid;
};

// site or app: which of them the request carried.
enum class Channel : std::uint8_t { kNone, kSite, kApp };

struct Publisher {
  Channel channel = Channel::kNone;
  std::string_view domain;  // site.domain, or "" for an app
  std::string_view bundle;  // app.bundle, or "" for a site
  StringList<kMaxCategories> cat;
  std::string_view publisher_id;
};

struct Device {
  std::string_view ua, ip, ifa;
  int devicetype = 0;        // OpenRTB device type (1 mobile/tablet .. 7 set-top box); 0: absent
  std::string_view country;  // geo.country, ISO-3166-1 alpha-3
};

struct User {
  std::string_view id, buyeruid;
};

struct Regs {
  int gdpr = -1;  // -1: absent
  std::string_view us_privacy;
};

struct BidRequest {
  std::string_view id;  // required, non-empty
  FixedList<Imp, kMaxImps> imp;  // required, at least one
  Publisher publisher;
  Device device;
  User user;
  int tmax = 0;  // ms; 0: absent (the server's default applies)
  int at = 2;    // 1 first price, 2 second price
  StringList<kMaxCurrencies> cur;
  StringList<kMaxCategories> bcat;
  StringList<kMaxBadv> badv;
  bool test = false;
  Regs regs;

  // Empties every field (the parser calls it first); touches no list entries, so it is cheap.
  void clear() {
    id = {};
    imp.clear();
    publisher.channel = Channel::kNone;
    publisher.domain = publisher.bundle = publisher.publisher_id = {};
    publisher.cat.clear();
    device = Device{};
    user = User{};
    tmax = 0;
    at = 2;
    cur.clear();
    bcat.clear();
    badv.clear();
    test = false;
    regs = Regs{};
  }
};

}  // namespace mnv::rtb
