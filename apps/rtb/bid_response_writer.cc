// apps/rtb/bid_response_writer.cc — the JSON writer behind bid_response_writer.h: a cursor over
// the caller's buffer that stops writing (and remembers it) at the end.
#include "apps/rtb/bid_response_writer.h"

#include <emmintrin.h>

#include <cassert>
#include <cstring>

namespace mnv::rtb {

namespace {

// The first index at or after `i` of a byte a JSON string must escape (a quote, a backslash or a
// control character), or s.size(): SSE2 over 16 bytes at a time, then byte by byte.
std::size_t plain_prefix(std::string_view s, std::size_t i) {
  const __m128i space = _mm_set1_epi8(0x20), quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
  for (; i + 16 <= s.size(); i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    __m128i at_least_space = _mm_cmpeq_epi8(_mm_max_epu8(v, space), v);  // unsigned: >= 0x20
    __m128i special = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
    unsigned plain = static_cast<unsigned>(_mm_movemask_epi8(_mm_andnot_si128(special, at_least_space)));
    if (plain != 0xFFFFu) return i + static_cast<std::size_t>(__builtin_ctz(~plain));
  }
  for (; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == '"' || c == '\\') return i;
  }
  return i;
}

class JsonOut {
 public:
  JsonOut(char* out, std::size_t cap) : begin_(out), p_(out), end_(out + cap) {}

  void raw(std::string_view s) {
    if (static_cast<std::size_t>(end_ - p_) < s.size()) {
      overflow_ = true;
      p_ = end_;
      return;
    }
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  void ch(char c) { raw(std::string_view(&c, 1)); }
  // A JSON string: quotes, backslashes and control characters escaped; other bytes as they are.
  void str(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    ch('"');
    std::size_t run = 0;  // bytes copied as they are, flushed in one go
    for (std::size_t i = 0; i < s.size(); ++i) {
      i = plain_prefix(s, i);  // most strings (URLs, ids) need no escaping: 16 bytes a step
      if (i == s.size()) break;
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      raw(s.substr(run, i - run));
      run = i + 1;
      switch (c) {
        case '"': raw("\\\""); break;
        case '\\': raw("\\\\"); break;
        case '\n': raw("\\n"); break;
        case '\r': raw("\\r"); break;
        case '\t': raw("\\t"); break;
        default: {
          char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
          raw(std::string_view(u, 6));
        }
      }
    }
    raw(s.substr(run));
    ch('"');
  }
  void integer(long long v) {
    char buf[24];
    int n = 0;
    bool neg = v < 0;
    unsigned long long u = neg ? 0ull - static_cast<unsigned long long>(v) : static_cast<unsigned long long>(v);
    do {
      buf[n++] = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u != 0);
    if (neg) buf[n++] = '-';
    char out[24];
    for (int i = 0; i < n; ++i) out[i] = buf[n - 1 - i];
    raw(std::string_view(out, static_cast<std::size_t>(n)));
  }
  void price(Micros m) {
    char buf[32];
    std::size_t n = format_decimal_micros(m, buf, sizeof buf);
    assert(n > 0);
    raw(std::string_view(buf, n));
  }
  // ,"key": (the comma unless first)
  void key(std::string_view k, bool first = false) {
    if (!first) ch(',');
    ch('"');
    raw(k);
    raw("\":");
  }
  std::size_t done() const { return overflow_ ? 0 : static_cast<std::size_t>(p_ - begin_); }

 private:
  char* begin_;
  char* p_;
  char* end_;
  bool overflow_ = false;
};

void write_tail(JsonOut& j, const Campaign& campaign, const Creative& cr);

void write_bid(JsonOut& j, const ResponseBid& b) {
  assert(b.campaign != nullptr && b.creative != nullptr);
  assert(b.price >= 0 && b.price <= kMaxCpmMicros);
  const Creative& cr = *b.creative;
  j.ch('{');
  j.key("id", true);
  j.str(b.id);
  j.key("impid");
  j.str(b.imp_id);
  j.key("price");
  j.price(b.price);
  if (!b.nurl.empty()) {
    j.key("nurl");
    j.str(b.nurl);
  }
  if (!b.burl.empty()) {
    j.key("burl");
    j.str(b.burl);
  }
  if (!b.lurl.empty()) {
    j.key("lurl");
    j.str(b.lurl);
  }
  if (!cr.bid_tail.empty()) {
    j.raw(cr.bid_tail);
  } else {
    write_tail(j, *b.campaign, cr);
  }
}

// ,"adm":...,"mtype":N} — the part of a bid that depends only on its creative.
void write_tail(JsonOut& j, const Campaign& campaign, const Creative& cr) {
  j.key("adm");
  j.str(cr.adm);
  j.key("adomain");
  j.ch('[');
  for (std::size_t i = 0; i < cr.adomain.size(); ++i) {
    if (i > 0) j.ch(',');
    j.str(cr.adomain[i]);
  }
  j.ch(']');
  j.key("crid");
  j.str(cr.crid);
  j.key("cid");
  j.str(campaign.id);
  if (cr.w != 0 && cr.h != 0) {
    j.key("w");
    j.integer(cr.w);
    j.key("h");
    j.integer(cr.h);
  }
  j.key("mtype");
  j.integer(static_cast<int>(cr.type));
  j.ch('}');
}

}  // namespace

std::size_t write_bid_response(std::string_view request_id, std::string_view seat, std::span<const ResponseBid> bids,
                               char* out, std::size_t cap) {
  assert(!bids.empty());
  JsonOut j(out, cap);
  j.ch('{');
  j.key("id", true);
  j.str(request_id);
  j.key("seatbid");
  j.raw("[{");
  if (!seat.empty()) {
    j.key("seat", true);
    j.str(seat);
    j.ch(',');
  }
  j.raw("\"bid\":[");
  for (std::size_t i = 0; i < bids.size(); ++i) {
    if (i > 0) j.ch(',');
    write_bid(j, bids[i]);
  }
  j.raw("]}]");
  j.key("cur");
  j.raw("\"USD\"}");
  return j.done();
}

void prewrite_bid_tails(Campaign* campaign) {
  for (Creative& cr : campaign->creatives) {
    cr.bid_tail.clear();
    std::string buf(256 + 6 * (cr.adm.size() + cr.crid.size() + campaign->id.size()), '\0');
    for (const std::string& d : cr.adomain) buf.resize(buf.size() + 6 * d.size() + 3);
    JsonOut j(buf.data(), buf.size());
    write_tail(j, *campaign, cr);
    buf.resize(j.done());  // (sized for the worst case: every byte a \u00XX)
    cr.bid_tail = std::move(buf);
  }
}

std::size_t write_no_bid_response(std::string_view request_id, int nbr, char* out, std::size_t cap) {
  JsonOut j(out, cap);
  j.ch('{');
  j.key("id", true);
  j.str(request_id);
  j.key("nbr");
  j.integer(nbr);
  j.ch('}');
  return j.done();
}

}  // namespace mnv::rtb
