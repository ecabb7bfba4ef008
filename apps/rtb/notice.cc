#include "apps/rtb/notice.h"

// The low-level SHA256_* calls (see notice.h for why): deprecated, not removed, in OpenSSL 3.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <charconv>
#include <cstring>

#include "apps/rtb/hex.h"

namespace mnv::rtb {

struct NoticeSigner::Keyed {
  SHA256_CTX inner, outer;
};

namespace {

std::size_t put_u64(char* p, std::uint64_t v) {
  auto r = std::to_chars(p, p + 20, v);
  return static_cast<std::size_t>(r.ptr - p);
}

bool get_u64(std::string_view s, std::uint64_t* v, int base = 10) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *v, base);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// The signed text: kind and every field, in a fixed order, with separators.
std::size_t canonical(NoticeKind kind, const NoticeFields& f, char* p) {
  char* s = p;
  *p++ = static_cast<char>(kind);
  *p++ = '|';
  p += put_u64(p, f.shard);
  *p++ = '|';
  p += put_u64(p, f.seq);
  *p++ = '|';
  p += put_u64(p, f.slot);
  *p++ = '|';
  p += put_u64(p, static_cast<std::uint64_t>(f.bid_cpm));
  *p++ = '|';
  p += put_hex64(p, f.user);
  *p++ = '|';
  *p++ = f.test ? '1' : '0';
  return static_cast<std::size_t>(p - s);
}

}  // namespace

const char* notice_check_name(NoticeCheck c) {
  switch (c) {
    case NoticeCheck::kOk: return "ok";
    case NoticeCheck::kMalformed: return "malformed";
    case NoticeCheck::kForged: return "forged";
  }
  return "?";
}

NoticeSigner::NoticeSigner(std::string_view key) : keyed_(std::make_unique<Keyed>()) {
  unsigned char k[SHA256_CBLOCK] = {};
  if (key.size() > SHA256_CBLOCK) {
    SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), k);
  } else {
    std::memcpy(k, key.data(), key.size());
  }
  unsigned char ipad[SHA256_CBLOCK], opad[SHA256_CBLOCK];
  for (int i = 0; i < SHA256_CBLOCK; ++i) {
    ipad[i] = static_cast<unsigned char>(k[i] ^ 0x36);
    opad[i] = static_cast<unsigned char>(k[i] ^ 0x5c);
  }
  SHA256_Init(&keyed_->inner);
  SHA256_Update(&keyed_->inner, ipad, sizeof ipad);
  SHA256_Init(&keyed_->outer);
  SHA256_Update(&keyed_->outer, opad, sizeof opad);
  OPENSSL_cleanse(k, sizeof k);
  OPENSSL_cleanse(ipad, sizeof ipad);
  OPENSSL_cleanse(opad, sizeof opad);
}

NoticeSigner::~NoticeSigner() { OPENSSL_cleanse(keyed_.get(), sizeof(Keyed)); }

std::size_t NoticeSigner::mac_hex(NoticeKind kind, const NoticeFields& f, char* out) const {
  char text[128];
  std::size_t n = canonical(kind, f, text);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256_CTX c = keyed_->inner;
  SHA256_Update(&c, text, n);
  SHA256_Final(digest, &c);
  c = keyed_->outer;
  SHA256_Update(&c, digest, sizeof digest);
  SHA256_Final(digest, &c);
  for (std::size_t i = 0; i < kMacHex / 2; ++i) {
    out[2 * i] = kHexDigits[digest[i] >> 4];
    out[2 * i + 1] = kHexDigits[digest[i] & 15];
  }
  return kMacHex;
}

std::size_t NoticeSigner::write_query(NoticeKind kind, const NoticeFields& f, char* out, std::size_t cap) const {
  if (cap < kMaxQuery) return 0;
  char* p = out;
  std::memcpy(p, "b=", 2);
  p += 2;
  p += put_u64(p, f.shard);
  *p++ = '-';
  p += put_u64(p, f.seq);
  std::memcpy(p, "&c=", 3);
  p += 3;
  p += put_u64(p, f.slot);
  std::memcpy(p, "&p=", 3);
  p += 3;
  p += put_u64(p, static_cast<std::uint64_t>(f.bid_cpm));
  std::memcpy(p, "&u=", 3);
  p += 3;
  p += put_hex64(p, f.user);
  std::memcpy(p, "&t=", 3);
  p += 3;
  *p++ = f.test ? '1' : '0';
  std::memcpy(p, "&s=", 3);
  p += 3;
  p += mac_hex(kind, f, p);
  return static_cast<std::size_t>(p - out);
}

NoticeCheck NoticeSigner::verify(NoticeKind kind, std::string_view query, NoticeFields* out,
                                 std::string_view* price) const {
  NoticeFields f;
  std::string_view mac;
  *price = {};
  unsigned seen = 0;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view k = pair.substr(0, eq), v = pair.substr(eq + 1);
    std::uint64_t n = 0;
    if (k == "b") {
      std::size_t dash = v.find('-');
      std::uint64_t shard = 0;
      if (dash == std::string_view::npos || !get_u64(v.substr(0, dash), &shard) || shard > 0xffff ||
          !get_u64(v.substr(dash + 1), &f.seq)) {
        return NoticeCheck::kMalformed;
      }
      f.shard = static_cast<std::uint32_t>(shard);
      seen |= 1;
    } else if (k == "c") {
      if (!get_u64(v, &n) || n > 0xffffffffu) return NoticeCheck::kMalformed;
      f.slot = static_cast<std::uint32_t>(n);
      seen |= 2;
    } else if (k == "p") {
      if (!get_u64(v, &n) || n > static_cast<std::uint64_t>(kMaxCpmMicros)) return NoticeCheck::kMalformed;
      f.bid_cpm = static_cast<Micros>(n);
      seen |= 4;
    } else if (k == "u") {
      if (v.size() != 16 || !get_u64(v, &f.user, 16)) return NoticeCheck::kMalformed;
      seen |= 8;
    } else if (k == "t") {
      if (v != "0" && v != "1") return NoticeCheck::kMalformed;
      f.test = v == "1";
      seen |= 16;
    } else if (k == "s") {
      mac = v;
      seen |= 32;
    } else if (k == "price") {
      *price = v;
    }
  }
  if (seen != 63 || mac.size() != kMacHex) return NoticeCheck::kMalformed;
  char want[kMacHex];
  mac_hex(kind, f, want);
  if (CRYPTO_memcmp(want, mac.data(), kMacHex) != 0) return NoticeCheck::kForged;
  *out = f;
  return NoticeCheck::kOk;
}

bool parse_price(std::string_view text, Micros* cpm, bool* bad) {
  *bad = false;
  if (text.empty() || text == "AUDIT" || text == "${AUCTION_PRICE}" || text == "%24%7BAUCTION_PRICE%7D") return false;
  if (!parse_decimal_micros(text, cpm)) {
    *bad = true;
    return false;
  }
  return true;
}

}  // namespace mnv::rtb
