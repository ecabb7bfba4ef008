// apps/rtb/notice.h — win, billing and loss notice URLs that cannot be forged.
//
// A bid's nurl, burl and lurl carry what settling it needs — the shard and sequence number of its
// reservation (apps/rtb/budget.h), the budget slot of its campaign, its bid CPM, the user's cap
// key and whether the request was a test — and an HMAC-SHA256 over those and the notice's kind,
// under the [rtb] hmac_key; the exchange appends the clearing price it substitutes for
// ${AUCTION_PRICE}:
//
//   http://HOST/rtb/win?b=1-1733301234567&c=12&p=2500000&u=9f3c0a...&t=0&s=<32 hex>&price=${AUCTION_PRICE}
//
// verify() refuses a notice whose fields or MAC were altered, or that was made for another kind
// (a win URL replayed as a loss). Replays of a genuine notice are refused by the budget (the bid's
// reservation is kept for its lifetime). parse_price() reads the substituted price: empty or
// `AUDIT` (audit renders) → no price (accepted, never debited); a decimal CPM → micro-USD.
//
// The MAC is OpenSSL's SHA-256 (Debian libssl-dev) in the HMAC construction (RFC 2104), its key's
// inner and outer hash states computed once per signer, so signing costs two SHA-256 blocks and no
// allocation (OpenSSL's HMAC() and EVP_MAC make a context per call). The low-level SHA256_* calls
// are deprecated in OpenSSL 3 in favour of EVP, whose contexts cannot be copied without allocating.
// Truncated to 128 bits (RFC 2104 §5 allows it; forging one is a 2^-128 guess).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "apps/rtb/money.h"

namespace mnv::rtb {

enum class NoticeKind : char { kWin = 'w', kBill = 'b', kLoss = 'l' };

struct NoticeFields {
  std::uint32_t shard = 0;  // the shard that reserved the bid
  std::uint64_t seq = 0;    // its reservation's sequence number (0: a test bid, nothing reserved)
  std::uint32_t slot = 0;   // the campaign's budget slot
  Micros bid_cpm = 0;       // the bid's price, micro-USD CPM
  std::uint64_t user = 0;   // the user's cap key (0: none)
  bool test = false;        // the request had test: 1 (never billed)
};

enum class NoticeCheck : std::uint8_t {
  kOk,
  kMalformed,  // a field missing or not a number
  kForged,     // the MAC does not match (altered, forged, or another kind's URL)
};
const char* notice_check_name(NoticeCheck c);

class NoticeSigner {
 public:
  static constexpr std::size_t kMacHex = 32;
  // The longest query write_query() makes (without "&price=${AUCTION_PRICE}").
  static constexpr std::size_t kMaxQuery = 160;

  explicit NoticeSigner(std::string_view key);
  ~NoticeSigner();
  NoticeSigner(const NoticeSigner&) = delete;
  NoticeSigner& operator=(const NoticeSigner&) = delete;

  // Writes "b=..&c=..&p=..&u=..&t=..&s=.." for `kind` into out; returns its length (0 when cap is
  // too small).
  std::size_t write_query(NoticeKind kind, const NoticeFields& f, char* out, std::size_t cap) const;
  // Reads and checks a notice's query string (any order; unknown keys skipped); *price is the
  // raw value of `price` ("" when absent).
  NoticeCheck verify(NoticeKind kind, std::string_view query, NoticeFields* out, std::string_view* price) const;

 private:
  std::size_t mac_hex(NoticeKind kind, const NoticeFields& f, char* out) const;
  struct Keyed;  // the key's inner and outer SHA-256 states
  std::unique_ptr<Keyed> keyed_;
};

// The clearing price of a notice: false for an audit or an empty price (*cpm untouched), true with
// the CPM in micro-USD; *bad is set for text that is neither (a malformed price).
bool parse_price(std::string_view text, Micros* cpm, bool* bad);

}  // namespace mnv::rtb
