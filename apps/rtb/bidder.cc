#include "apps/rtb/bidder.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "apps/rtb/auction.h"
#include "apps/rtb/bid_request.h"
#include "apps/rtb/bid_request_parser.h"
#include "apps/rtb/bid_response_writer.h"
#include "apps/rtb/budget.h"
#include "apps/rtb/campaign_index.h"
#include "apps/rtb/campaigns.h"
#include "apps/rtb/cap_keeper.h"
#include "apps/rtb/freq_cap.h"
#include "apps/rtb/gzip.h"
#include "apps/rtb/lease_keeper.h"
#include "apps/rtb/notice.h"
#include "apps/rtb/pacer.h"
#include "apps/rtb/redis_caps.h"
#include "mem/log.h"
#include "net/io.h"
#include "runtime/clock.h"
#include "runtime/fault_injection.h"
#include "runtime/process.h"
#include "runtime/raise.h"
#include "shard/cross_call.h"
#include "shard/metrics_page.h"
#include "shard/shared_memory.h"

namespace mnv::rtb {

using http::Method;
using http::Request;
using http::Response;

http::Site g_site;

namespace {

// ---- config ---------------------------------------------------------------------------------

struct RtbConfig {
  std::string campaigns;
  std::string hmac_key;
  std::string notice_base;
  std::string seat;
  std::int64_t default_tmax_ms = 120;
  std::int64_t safety_margin_ms = 20;
  std::int64_t shed_lag_ms = 0;
  std::int64_t reservation_ms = 5'000;
  std::size_t max_body = 16384;
  std::size_t max_reservations = 1 << 18;
  std::size_t cap_entries = 1 << 18;
  std::size_t max_campaigns = 16384;
  std::size_t contexts = 16;
  bool cap_timeout_bids = false;
  bool bill_at_win = false;
  bool fault_injection = false;
  std::int64_t cap_owner_delay_ms = 0;
  std::string redis;  // budget leases from this Redis or Cluster (lease_keeper.h); empty: local budgets
  LeaseKeeper::Options lease;
  bool caps_redis = false;  // [rtb] caps = "redis": caps shared through that Redis (redis_caps.h)
  std::int64_t caps_cache_ms = 100;
};
RtbConfig g_config;
LeaseMetrics g_lease_metrics;
CapsMetrics g_caps_metrics;

// Shared by every shard (threads or processes): the reload generation, the budget book.
struct Shared {
  std::atomic<std::uint64_t> generation{1};
};
std::unique_ptr<SharedObject<Shared>> g_shared;
std::unique_ptr<BudgetBook> g_book;

// ---- metrics --------------------------------------------------------------------------------

// No-bid causes beyond the auction's own reasons.
enum class Extra : std::uint8_t { kCap, kCapTimeout, kNoUser, kBudget, kPacing, kLate, kShed, kTest, kCount };
const char* extra_name(Extra e) {
  switch (e) {
    case Extra::kCap: return "user_cap";
    case Extra::kCapTimeout: return "cap_timeout";
    case Extra::kNoUser: return "no_user_for_cap";
    case Extra::kBudget: return "budget";
    case Extra::kPacing: return "pacing";
    case Extra::kLate: return "late";
    case Extra::kShed: return "shed";
    default: return "?";
  }
}
int extra_nbr(Extra e) {
  switch (e) {
    case Extra::kCap: return 9;  // daily user cap met
    case Extra::kCapTimeout:
    case Extra::kLate:
    case Extra::kShed: return 15;  // insufficient auction time
    case Extra::kNoUser: return 8;  // unmatched user
    default: return 0;
  }
}

enum class Refusal : std::uint8_t { kMalformed, kForged, kReplayed, kExpired, kAbovePrice, kBadPrice, kUnreachable, kCount };
const char* refusal_name(Refusal r) {
  static const char* const names[] = {"malformed", "forged", "replayed", "expired", "above_price", "bad_price", "unreachable"};
  return names[static_cast<int>(r)];
}

struct Metrics {
  bool on = false;
  metrics::Counter bids, bid_requests_ok, invalid, too_large, spend, test_notices, audit_notices;
  metrics::Counter no_bid[static_cast<int>(NoBidReason::kCount)];
  metrics::Counter no_bid_extra[static_cast<int>(Extra::kCount)];
  metrics::Counter notices[3];
  metrics::Counter refused[static_cast<int>(Refusal::kCount)];
  metrics::Counter reloads_ok, reloads_refused;
  metrics::Histogram decide;
};
Metrics g_metrics;

// Per-campaign spend series, for the campaigns in the file at start (registered once, in
// add_metrics; a campaign a reload adds later has none). Each shard publishes its own slice's
// spent and reserved every kPublishTicks ticks; shard 0 alone publishes the budgets, so that
// `sum without (shard)` gives each campaign's figures.
struct CampaignSeries {
  bool on = false;
  metrics::Counter spent;
  metrics::Gauge reserved, total_budget, daily_budget;
};
std::vector<CampaignSeries> g_campaign_series;  // by budget slot
std::vector<int> g_series_slots;                // the slots that have series
std::vector<std::string> g_start_campaigns;     // (configure → add_metrics) the file's ids at start
constexpr int kPublishTicks = 20;

const metrics::ShardCells& cells() { return Shard::current()->metrics(); }
void count(metrics::Counter c, std::uint64_t n = 1) {
  if (g_metrics.on) cells().add(c, n);
}

// ---- each shard's state ---------------------------------------------------------------------

// One request's working memory. A request that waits (for a cap owner) keeps its context, so
// the next request on the shard parses into another one.
struct Context {
  explicit Context(std::size_t max_body) : parser(max_body) {
    raw = std::make_unique<char[]>(max_body + BidRequestParser::kPadding);
    body = std::make_unique<char[]>(max_body + BidRequestParser::kPadding);
    out = std::make_unique<char[]>(kOut);
    zout = std::make_unique<char[]>(kOut);
  }
  static constexpr std::size_t kOut = 65536;
  static constexpr std::size_t kUrl = 512;
  BidRequestParser parser;
  BidRequest request;
  Decision decision;
  std::unique_ptr<char[]> raw, body, out, zout;
  char ids[kMaxImps][32];
  char urls[kMaxImps][3][kUrl];
  std::uint64_t seqs[kMaxImps];
  int slots[kMaxImps];
  Context* next_free = nullptr;
};

// The campaigns a shard serves: the index, and each campaign's budget slot.
struct Generation {
  std::shared_ptr<const CampaignIndex> index;
  std::vector<int> slot_of;  // by campaign index
};

struct ShardState {
  std::size_t index = 0;
  std::unique_ptr<ShardBudget> budget;
  std::unique_ptr<LeaseKeeper> keeper;  // [rtb] redis set: the slices are filled from Redis leases
  std::unique_ptr<FreqCaps> caps;         // the owner side: the users this shard owns
  std::unique_ptr<CapKeeper> cap_keeper;  // how this shard's requests and notices use caps
  RedisCaps* redis_caps = nullptr;        // (cap_keeper, when [rtb] caps = "redis")
  std::unique_ptr<NoticeSigner> signer;
  std::unique_ptr<Gzip> gzip;
  std::shared_ptr<const Generation> gen;
  std::uint64_t gen_seen = 0;
  std::vector<std::unique_ptr<Pacer>> pacers;  // by budget slot
  std::vector<int> campaign_of_slot;           // by budget slot: the current index's campaign, or -1
  std::vector<std::unique_ptr<Context>> contexts;
  Context* free = nullptr;
  std::int64_t lag_ns = 0;       // how late the ticker last woke
  std::int64_t tick_due_ns = 0;  // when it is due next: a loop held past it lags now
  std::uint64_t rng = 0x2545F4914F6CDD1Dull;
  std::uint64_t test_bids = 0;
  std::vector<Micros> spent_published;     // by budget slot: what the spent counter holds
  std::unique_ptr<HeapPool> ticker_pool;  // (kept to the end: the kernel holds the ticker to its last turn)
};
std::unique_ptr<ShardState> g_state[256];

ShardState& state() { return *g_state[Shard::current()->index()]; }

std::uint64_t campaign_key(std::string_view id) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char c : id) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h == 0 ? 1 : h;
}

std::int64_t wall_ms() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1'000'000;
}

// Loads the campaigns file into a new generation for shard `s`: budget slots opened with each
// campaign's total, pacers made for new slots. False with *error (the old one stays).
bool load_generation(ShardState& s, std::string* error) {
  CampaignSet set;
  if (!load_campaigns(g_config.campaigns, &set, error)) return false;
  if (set.campaigns.size() > g_config.max_campaigns) {
    *error = g_config.campaigns + ": " + std::to_string(set.campaigns.size()) + " campaigns, over [rtb] max_campaigns = " +
             std::to_string(g_config.max_campaigns);
    return false;
  }
  for (Campaign& c : set.campaigns) prewrite_bid_tails(&c);  // (escaped once here, not per bid)
  auto gen = std::make_shared<Generation>();
  gen->index = CampaignIndex::build(std::move(set));
  gen->slot_of.resize(static_cast<std::size_t>(gen->index->size()));
  std::fill(s.campaign_of_slot.begin(), s.campaign_of_slot.end(), -1);
  std::int64_t now = wall_ms();
  std::size_t shards = Shard::current()->set().size();
  for (int i = 0; i < gen->index->size(); ++i) {
    const Campaign& c = gen->index->campaign(static_cast<std::uint32_t>(i));
    int slot = s.budget->open(campaign_key(c.id), s.keeper ? 0 : c.total_budget, error);
    if (slot < 0) return false;
    if (s.keeper) s.keeper->track(slot, c.id, c.total_budget);
    if (c.freq_cap.enabled()) s.cap_keeper->track(static_cast<std::uint32_t>(slot), campaign_key(c.id), c.freq_cap.window_s);
    gen->slot_of[static_cast<std::size_t>(i)] = slot;
    s.campaign_of_slot[static_cast<std::size_t>(slot)] = i;
    if (!s.pacers[static_cast<std::size_t>(slot)]) {
      s.pacers[static_cast<std::size_t>(slot)] =
          std::make_unique<Pacer>(c.daily_budget / static_cast<Micros>(shards) + 1, now);
    }
  }
  s.gen = std::move(gen);
  return true;
}

void on_debit(void* ctx, int slot, Micros cost) {
  auto* s = static_cast<ShardState*>(ctx);
  if (auto& p = s->pacers[static_cast<std::size_t>(slot)]) p->on_spend(wall_ms(), cost);
  count(g_metrics.spend, static_cast<std::uint64_t>(cost));
}

// This shard's slices of the campaigns with series, into its cells.
void publish_campaign_series(ShardState& s) {
  if (!g_metrics.on) return;
  const metrics::ShardCells& m = cells();
  const BudgetBook& book = s.budget->book();
  for (int slot : g_series_slots) {
    const CampaignSeries& cs = g_campaign_series[static_cast<std::size_t>(slot)];
    const BudgetSlice& slice = book.slice(s.index, static_cast<std::size_t>(slot));
    Micros spent = slice.spent.load(std::memory_order_relaxed);
    Micros& published = s.spent_published[static_cast<std::size_t>(slot)];
    if (spent > published) {
      m.add(cs.spent, static_cast<std::uint64_t>(spent - published));
      published = spent;
    }
    m.set(cs.reserved, slice.reserved.load(std::memory_order_relaxed));
    if (s.index == 0) {
      int ci = s.campaign_of_slot[static_cast<std::size_t>(slot)];
      const Campaign* c = ci >= 0 && s.gen ? &s.gen->index->campaign(static_cast<std::uint32_t>(ci)) : nullptr;
      m.set(cs.total_budget, c != nullptr ? c->total_budget : 0);
      m.set(cs.daily_budget, c != nullptr ? c->daily_budget : 0);
    }
  }
}

// Each shard's ticker: measures the loop's lag (for shedding) and picks up reloads.
Thread ticker() {
  ShardState& s = state();
  constexpr std::int64_t kTick = 1'000'000;
  std::int64_t next = monotonic_ns() + kTick;
  for (int ticks = 0;; ++ticks) {
    if (ticks % kPublishTicks == 0) publish_campaign_series(s);
    s.tick_due_ns = next;
    co_await sleep_until(next);
    std::int64_t now = monotonic_ns();
    std::int64_t lag = now - next;
    s.lag_ns = lag > 0 ? lag : 0;
    next = now + kTick;
    s.budget->expire(now);
    std::uint64_t g = (*g_shared)->generation.load(std::memory_order_acquire);
    if (g != s.gen_seen) {
      s.gen_seen = g;
      std::string error;
      if (load_generation(s, &error)) {
        count(g_metrics.reloads_ok);
        std::fprintf(stderr, "rtb: shard %zu: campaigns reloaded from %s\n", s.index, g_config.campaigns.c_str());
      } else {
        count(g_metrics.reloads_refused);
        std::fprintf(stderr, "rtb: shard %zu: reload refused, the old campaigns keep serving: %s\n", s.index,
                     error.c_str());
      }
    }
  }
}

// ---- answers ----------------------------------------------------------------------------------

Task<> no_bid(Response& res, int nbr_unused) {
  (void)nbr_unused;
  res.status(204);
  res.header("x-openrtb-version", "2.6");
  co_await res.send("");
}

Task<> bad_request(Response& res, int status, std::string_view reason) {
  res.status(status);
  res.header("Content-Type", "text/plain");
  res.header("x-openrtb-version", "2.6");
  co_await res.send(reason);
}

// A request's hold on one of its shard's contexts (none when every one is taken), given back
// however the handler ends: it returns, raises or times out (its frames are destroyed), or traps
// (its frame is never destroyed, but the kernel reclaims its process, which runs the hook). It
// also holds the campaigns generation the request decides with, given back the same way.
struct ContextLease : ReclaimHook {
  explicit ContextLease(ShardState& state) : ReclaimHook(&ContextLease::reclaimed), s(state), c(state.free) {
    if (c == nullptr) return;
    s.free = c->next_free;
    gen = s.gen;  // a reload meanwhile does not pull it away
    this_process().on_reclaim(this);
  }
  ~ContextLease() { give_back(); }
  ContextLease(const ContextLease&) = delete;
  ContextLease& operator=(const ContextLease&) = delete;
  void give_back() {
    gen.reset();
    if (c == nullptr) return;
    c->next_free = s.free;
    s.free = c;
    c = nullptr;
  }
  static void reclaimed(ReclaimHook* h) { static_cast<ContextLease*>(h)->give_back(); }
  ShardState& s;
  Context* c;
  std::shared_ptr<const Generation> gen;
};

std::size_t write_url(char* out, std::string_view base, std::string_view host, std::string_view path, NoticeKind kind,
                      const NoticeFields& f, const NoticeSigner& signer) {
  char* p = out;
  char* end = out + Context::kUrl;
  auto put = [&](std::string_view v) {
    if (static_cast<std::size_t>(end - p) < v.size()) return false;
    std::memcpy(p, v.data(), v.size());
    p += v.size();
    return true;
  };
  if (!base.empty()) {
    if (!put(base)) return 0;
  } else if (!put("http://") || !put(host)) {
    return 0;
  }
  if (!put(path) || !put("?")) return 0;
  if (static_cast<std::size_t>(end - p) < NoticeSigner::kMaxQuery + 32) return 0;
  p += signer.write_query(kind, f, p, NoticeSigner::kMaxQuery);
  if (kind != NoticeKind::kLoss && !put("&price=${AUCTION_PRICE}")) return 0;
  return static_cast<std::size_t>(p - out);
}

// "<shard>-<seq>", or "<shard>-t<n>" for a test request (to_chars: snprintf showed in the profile).
std::size_t put_bid_id(char* out, std::size_t shard, std::uint64_t seq, bool test, std::uint64_t n) {
  char* const end = out + 32;
  char* p = std::to_chars(out, end, shard).ptr;
  *p++ = '-';
  if (test) *p++ = 't';
  p = std::to_chars(p, end, test ? n : seq).ptr;
  return static_cast<std::size_t>(p - out);
}

// POST /openrtb2/bid
Task<> bid(Request& req, Response& res) {
  ShardState& s = state();
  std::int64_t t0 = monotonic_ns();
  if (g_config.fault_injection) {
    std::string_view fault = req.header("x-mnv-fault");
    if (fault == "segv") null_dereference();
    if (fault == "fpe") divide_by_zero();
    if (fault == "stall") {  // holds the shard 150 ms, as a burst of work would
      while (monotonic_ns() < t0 + 150'000'000) {
      }
    }
  }
  // The loop's lag: how late the ticker last woke, or how overdue it is now (a loop held by a
  // burst shows here at once, before the ticker runs again).
  std::int64_t lag = s.lag_ns > t0 - s.tick_due_ns ? s.lag_ns : t0 - s.tick_due_ns;
  if (lag > g_config.shed_lag_ms * 1'000'000) {
    count(g_metrics.no_bid_extra[static_cast<int>(Extra::kShed)]);
    co_await no_bid(res, 15);
    co_return;
  }
  // The body's first piece before a context is taken: a sender that has sent none of its body
  // yet holds no context while it is waited for. Waits for the rest are bounded by
  // [rtb] body_timeout_ms (the connection is closed past it, its context given back).
  std::string_view encoding = req.header("content-encoding");  // (before a wait moves the head)
  bool gzipped = encoding == "gzip" || encoding == "x-gzip";
  bool identity = encoding.empty() || encoding == "identity";
  std::string_view first = co_await req.read_some();
  if (req.body_error() != 0) co_return;  // (the server answers a broken body)
  ContextLease lease(s);
  if (lease.c == nullptr) {  // every context is waiting on a cap owner: shed
    count(g_metrics.no_bid_extra[static_cast<int>(Extra::kShed)]);
    co_await no_bid(res, 15);
    co_return;
  }
  Context& c = *lease.c;
  const std::shared_ptr<const Generation>& gen = lease.gen;

  // The body, inflated when it is gzip.
  std::size_t max = g_config.max_body;
  if (!gzipped && !identity) {
    count(g_metrics.invalid);
    co_await bad_request(res, 415, "Content-Encoding: only gzip is accepted\n");
    co_return;
  }
  char* in = gzipped ? c.raw.get() : c.body.get();
  std::size_t n = 0;
  for (std::string_view piece = first; !piece.empty(); piece = co_await req.read_some()) {
    if (n <= max) {  // (as read_all: over max, n ends at max + 1 and the rest is discarded)
      std::size_t k = piece.size() <= max - n ? piece.size() : max - n;
      std::memcpy(in + n, piece.data(), k);
      n += piece.size() <= max - n ? piece.size() : max - n + 1;
    }
  }
  if (req.body_error() != 0) co_return;  // (the server answers a broken body)
  if (n > max) {
    count(g_metrics.too_large);
    co_await bad_request(res, 413, "the bid request is larger than [rtb] max_bid_body\n");
    co_return;
  }
  if (gzipped) {
    long z = s.gzip->inflate(c.raw.get(), n, c.body.get(), max);
    if (z == -2) {
      count(g_metrics.too_large);
      co_await bad_request(res, 413, "the inflated bid request is larger than [rtb] max_bid_body\n");
      co_return;
    }
    if (z < 0) {
      count(g_metrics.invalid);
      co_await bad_request(res, 400, "Content-Encoding: gzip, but the body is not valid gzip\n");
      co_return;
    }
    n = static_cast<std::size_t>(z);
  }
  BidRequest& r = c.request;
  ParseResult parsed = c.parser.parse(c.body.get(), n, max + BidRequestParser::kPadding, &r);
  if (parsed.status == ParseStatus::kTooLarge) {
    count(g_metrics.too_large);
    co_await bad_request(res, 413, parsed.reason);
    co_return;
  }
  if (parsed.status != ParseStatus::kOk) {
    count(g_metrics.invalid);
    co_await bad_request(res, 400, parsed.reason);
    co_return;
  }
  if (g_config.fault_injection) {  // the same, holding a context now
    std::string_view fault = req.header("x-mnv-fault");
    if (fault == "segv-holding") null_dereference();
    if (fault == "raise-holding") co_await raise(EIO);
    if (fault == "hold") co_await sleep_for(30'000'000);  // as a request waiting on its cap owner
  }
  std::int64_t tmax_ms = r.tmax > 0 ? r.tmax : g_config.default_tmax_ms;
  std::int64_t deadline = t0 + (tmax_ms - g_config.safety_margin_ms) * 1'000'000;
  if (!gen || monotonic_ns() >= deadline) {
    count(g_metrics.no_bid_extra[static_cast<int>(Extra::kLate)]);
    co_await no_bid(res, 15);
    co_return;
  }

  Decision& d = c.decision;
  run_auction(*gen->index, r, &d);
  if (!d.any()) {
    count(g_metrics.no_bid[static_cast<int>(d.reason())]);
    co_await no_bid(res, no_bid_nbr(d.reason()));
    co_return;
  }

  // Frequency caps: the capped candidates' slots, asked of the user's owner in one call.
  std::uint64_t user = user_key(r);
  FreqCaps::Query q{};
  q.user = user;
  for (auto& item : q.items) item.slot = ~0u;
  int asked = 0;
  bool any_capped = false;
  for (const ImpDecision& imp : d.imps) {
    for (const Candidate& cand : imp.candidates) {
      if (!cand.campaign->freq_cap.enabled()) continue;
      any_capped = true;
      auto slot = static_cast<std::uint32_t>(gen->slot_of[cand.campaign->index]);
      bool dup = false;
      for (int i = 0; i < asked; ++i) dup = dup || q.items[i].slot == slot;
      if (!dup && asked < FreqCaps::kMaxCheck) q.items[asked++] = {slot, cand.campaign->freq_cap.impressions};
    }
  }
  std::uint32_t cap_ok = 0;
  bool caps_unknown = false;
  if (any_capped && user != 0 && asked > 0) {
    CapAnswer a = co_await s.cap_keeper->check(q, deadline);
    if (a.error != 0 || a.unknown != 0) {  // the owner, or Redis, could not say in time
      if (!g_config.cap_timeout_bids) {
        count(g_metrics.no_bid_extra[static_cast<int>(Extra::kCapTimeout)]);
        co_await no_bid(res, 15);
        co_return;
      }
      caps_unknown = a.error != 0;  // [rtb] cap_timeout = "bid": as if under the cap
      a.allowed |= a.unknown;
    }
    cap_ok = a.allowed;
  }
  auto cap_allows = [&](const Campaign& camp) {
    if (!camp.freq_cap.enabled()) return true;
    if (user == 0) return false;  // a capped campaign cannot count an unknown user
    if (caps_unknown) return true;
    auto slot = static_cast<std::uint32_t>(gen->slot_of[camp.index]);
    for (int i = 0; i < asked; ++i) {
      if (q.items[i].slot == slot) return ((cap_ok >> i) & 1u) != 0;
    }
    return false;  // beyond the kMaxCheck asked: not known to be under its cap
  };

  // Per impression, the first candidate that pacing, its cap and its budget let bid.
  ResponseBid bids[kMaxImps];
  int nbids = 0;
  Extra why = Extra::kCount;
  std::int64_t now = monotonic_ns();
  std::int64_t now_ms = wall_ms();
  std::string_view host = req.header("host");
  for (int i = 0; i < d.imps.size(); ++i) {
    for (const Candidate& cand : d.imps[i].candidates) {
      const Campaign& camp = *cand.campaign;
      int slot = gen->slot_of[camp.index];
      if (!cap_allows(camp)) {
        why = user == 0 ? Extra::kNoUser : Extra::kCap;
        continue;
      }
      s.rng ^= s.rng << 13;
      s.rng ^= s.rng >> 7;
      s.rng ^= s.rng << 17;
      if (auto& pacer = s.pacers[static_cast<std::size_t>(slot)];
          pacer && !pacer->should_bid(now_ms, static_cast<std::uint32_t>(s.rng))) {
        why = Extra::kPacing;
        continue;
      }
      std::uint64_t seq = 0;
      if (!r.test) {
        seq = s.budget->reserve(slot, impression_cost(cand.price), now);
        if (seq == 0) {
          why = Extra::kBudget;
          continue;
        }
      }
      c.seqs[nbids] = seq;
      c.slots[nbids] = slot;
      NoticeFields f{static_cast<std::uint32_t>(s.index), seq, static_cast<std::uint32_t>(slot), cand.price, user,
                     r.test};
      std::size_t idn = put_bid_id(c.ids[nbids], s.index, seq, r.test, ++s.test_bids);
      std::size_t wn = write_url(c.urls[nbids][0], g_config.notice_base, host, "/rtb/win", NoticeKind::kWin, f, *s.signer);
      std::size_t bn = g_config.bill_at_win
                           ? 0
                           : write_url(c.urls[nbids][1], g_config.notice_base, host, "/rtb/bill", NoticeKind::kBill, f,
                                       *s.signer);
      std::size_t ln = write_url(c.urls[nbids][2], g_config.notice_base, host, "/rtb/loss", NoticeKind::kLoss, f, *s.signer);
      ResponseBid& b = bids[nbids++];
      b.id = std::string_view(c.ids[nbids - 1], idn);
      b.imp_id = r.imp[i].id;
      b.price = cand.price;
      b.nurl = std::string_view(c.urls[nbids - 1][0], wn);
      b.burl = std::string_view(c.urls[nbids - 1][1], bn);
      b.lurl = std::string_view(c.urls[nbids - 1][2], ln);
      b.campaign = cand.campaign;
      b.creative = cand.creative;
      break;
    }
  }
  auto release = [&] {
    for (int i = 0; i < nbids; ++i) {
      if (c.seqs[i] != 0) s.budget->settle(c.seqs[i], ShardBudget::Notice::kLoss, 0, false, monotonic_ns());
    }
  };
  if (nbids == 0) {
    count(g_metrics.no_bid_extra[static_cast<int>(why == Extra::kCount ? Extra::kBudget : why)]);
    co_await no_bid(res, extra_nbr(why));
    co_return;
  }
  std::size_t len = write_bid_response(r.id, g_config.seat, std::span<const ResponseBid>(bids, static_cast<std::size_t>(nbids)),
                                       c.out.get(), Context::kOut);
  if (len == 0 || monotonic_ns() >= deadline) {  // too late (or too big) to send: nobody will win it
    release();
    count(g_metrics.no_bid_extra[static_cast<int>(Extra::kLate)]);
    co_await no_bid(res, 15);
    co_return;
  }
  std::string_view body(c.out.get(), len);
  res.header("Content-Type", "application/json");
  res.header("x-openrtb-version", "2.6");
  if (req.header("accept-encoding").find("gzip") != std::string_view::npos) {
    std::size_t zn = s.gzip->deflate(c.out.get(), len, c.zout.get(), Context::kOut);
    if (zn > 0) {
      body = std::string_view(c.zout.get(), zn);
      res.header("Content-Encoding", "gzip");
    }
  }
  count(g_metrics.bids, static_cast<std::uint64_t>(nbids));
  count(g_metrics.bid_requests_ok);
  if (g_metrics.on) cells().record(g_metrics.decide, static_cast<std::uint64_t>(monotonic_ns() - t0));
  co_await res.send(body);
}

// ---- notices ----------------------------------------------------------------------------------

Task<> refuse(Response& res, Refusal why, int status) {
  count(g_metrics.refused[static_cast<int>(why)]);
  res.status(status);
  res.header("Content-Type", "text/plain");
  char line[96];
  int n = std::snprintf(line, sizeof line, "notice refused: %s\n", refusal_name(why));
  co_await res.send(std::string_view(line, static_cast<std::size_t>(n)));
}

Task<> notice(Request& req, Response& res, NoticeKind kind) {
  ShardState& s = state();
  NoticeFields f;
  std::string_view price_text;
  NoticeCheck check = s.signer->verify(kind, req.query(), &f, &price_text);
  if (check == NoticeCheck::kMalformed || f.shard >= Shard::current()->set().size()) {
    co_await refuse(res, Refusal::kMalformed, 400);
    co_return;
  }
  if (check == NoticeCheck::kForged) {
    co_await refuse(res, Refusal::kForged, 403);
    co_return;
  }
  Micros clearing = 0;
  bool bad = false;
  bool priced = kind != NoticeKind::kLoss && parse_price(price_text, &clearing, &bad);
  if (bad) {
    co_await refuse(res, Refusal::kBadPrice, 400);
    co_return;
  }
  if (priced && clearing > f.bid_cpm) {
    co_await refuse(res, Refusal::kAbovePrice, 400);
    co_return;
  }
  int k = kind == NoticeKind::kWin ? 0 : kind == NoticeKind::kBill ? 1 : 2;
  if (f.test) {  // test: 1 — never billed
    count(g_metrics.test_notices);
    co_await res.send("ok\n");
    co_return;
  }
  if (kind != NoticeKind::kLoss && !priced) count(g_metrics.audit_notices);
  ShardBudget::SettleRequest sr{f.seq, priced ? impression_cost(clearing) : -1,
                                static_cast<std::uint8_t>(kind == NoticeKind::kWin    ? ShardBudget::Notice::kWin
                                                          : kind == NoticeKind::kBill ? ShardBudget::Notice::kBill
                                                                                      : ShardBudget::Notice::kLoss),
                                static_cast<std::uint8_t>(g_config.bill_at_win ? 1 : 0)};
  int error = 0;
  ShardMessage reply = co_await cross_call_status(f.shard, kBudgetSettle, &sr, sizeof sr, 1'000'000'000, &error);
  if (error != 0) {
    co_await refuse(res, Refusal::kUnreachable, 503);
    co_return;
  }
  switch (static_cast<Settled>(reply.payload[0])) {
    case Settled::kReplayed: co_await refuse(res, Refusal::kReplayed, 409); co_return;
    case Settled::kExpired: co_await refuse(res, Refusal::kExpired, 410); co_return;
    case Settled::kAbovePrice: co_await refuse(res, Refusal::kAbovePrice, 400); co_return;
    default: break;
  }
  count(g_metrics.notices[k]);
  // A win is an impression: its user's owner counts it against the campaign's cap.
  if (kind == NoticeKind::kWin && priced && f.user != 0 && s.gen && f.slot < s.campaign_of_slot.size()) {
    int ci = s.campaign_of_slot[f.slot];
    if (ci >= 0) {
      const Campaign& camp = s.gen->index->campaign(static_cast<std::uint32_t>(ci));
      if (camp.freq_cap.enabled()) co_await s.cap_keeper->record(FreqCaps::Record{f.user, f.slot, camp.freq_cap.window_s});
    }
  }
  co_await res.send("ok\n");
}

Task<> win(Request& req, Response& res) { co_await notice(req, res, NoticeKind::kWin); }
Task<> bill(Request& req, Response& res) { co_await notice(req, res, NoticeKind::kBill); }
Task<> loss(Request& req, Response& res) { co_await notice(req, res, NoticeKind::kLoss); }

Task<> healthz(Request&, Response& res) {
  res.header("Content-Type", "text/plain");
  co_await res.send("ok\n");
}

bool check_key(std::string_view v, std::string* why) {
  if (v.size() < 16) {
    *why = "must be at least 16 characters (a secret shared with nobody: the notices' HMAC key)";
    return false;
  }
  return true;
}

}  // namespace

Service service() {
  add_routes(&g_site);
  Service rtb;
  rtb.name = "rtb";
  rtb.about = "OpenRTB 2.6 bidder: POST /openrtb2/bid, GET|POST /rtb/win|bill|loss, /healthz, /metrics";
  rtb.handler = http::serve;
  rtb.message = &g_site;
  rtb.min_heap_pages = 4;
  rtb.add_knobs = add_knobs;
  rtb.configure = configure;
  rtb.add_metrics = add_metrics;
  rtb.init_shard = init_shard;
  rtb.fini_shard = fini_shard;
  rtb.reload = request_reload;
  return rtb;
}

void add_routes(http::Site* site) {
  site->router.add(Method::kPost, "/openrtb2/bid", bid);
  for (Method m : {Method::kGet, Method::kPost}) {
    site->router.add(m, "/rtb/win", win);
    site->router.add(m, "/rtb/bill", bill);
    site->router.add(m, "/rtb/loss", loss);
  }
  site->router.add(Method::kGet, "/healthz", healthz);
  site->router.add(Method::kGet, "/metrics", metrics_page);
}

void add_knobs(Config& config) {
  RtbConfig d;
  config.add_text("rtb", "campaigns", "", "a path", [](std::string_view v, std::string* why) {
    if (v.empty()) *why = "must name the campaigns file (apps/rtb/campaigns.toml is a sample)";
    return !v.empty();
  }, "the campaigns file (TOML; apps/rtb/campaigns.h); SIGHUP reloads it");
  config.add_text("rtb", "hmac_key", "", "at least 16 characters", check_key,
                  "the key the notice URLs are signed with (HMAC-SHA256)");
  config.add_text("rtb", "notice_base", "", "a URL such as http://bidder.example:8080",
                  [](std::string_view, std::string*) { return true; },
                  "the start of the notice URLs; empty: http:// and the bid request's Host", true);
  config.add_text("rtb", "seat", "mnv", "a seat id", [](std::string_view, std::string*) { return true; },
                  "seatbid.seat in responses");
  config.add_int("rtb", "default_tmax_ms", d.default_tmax_ms, 1, 60'000, "a request's tmax when it has none");
  config.add_int("rtb", "safety_margin_ms", d.safety_margin_ms, 0, 60'000,
                 "taken off tmax for the network: a decision not done by then answers 204");
  config.add_int("rtb", "shed_lag_ms", 0, 0, 60'000,
                 "shed bid requests (204 at once) while the shard's loop lags more than this; 0: "
                 "(default_tmax_ms - safety_margin_ms) / 2");
  config.add_int("rtb", "reservation_ms", d.reservation_ms, 1, 86'400'000,
                 "how long a bid's budget stays reserved waiting for its notice (notices later are refused)");
  config.add_int("rtb", "max_bid_body", static_cast<std::int64_t>(d.max_body), 256, 1 << 24,
                 "bid request body bytes (after gzip); over it: 413");
  config.add_int("rtb", "max_reservations", static_cast<std::int64_t>(d.max_reservations), 2, 1 << 26,
                 "bids awaiting notices per shard (a power of two; 16 bytes each)");
  config.add_int("rtb", "cap_entries", static_cast<std::int64_t>(d.cap_entries), 8, 1 << 28,
                 "frequency cap entries per shard (a power of two; 32 bytes each)");
  config.add_int("rtb", "max_campaigns", static_cast<std::int64_t>(d.max_campaigns), 1, 1 << 20,
                 "campaign budget slots (ever, across reloads)");
  config.add_int("rtb", "contexts", static_cast<std::int64_t>(d.contexts), 1, 4096,
                 "bid requests in progress per shard (each keeps a parser: ~7 bytes per max_bid_body byte)");
  config.add_int("rtb", "body_timeout_ms", 0, 0, 600'000,
                 "the whole bid request body within this (else the connection closes; a context a "
                 "slow sender took is given back); 0: default_tmax_ms");
  config.add_choice("rtb", "cap_timeout", "no_bid", {"no_bid", "bid"},
                    "when the user's cap owner cannot answer in time: no-bid, or bid without the cap");
  config.add_choice("rtb", "bill_at", "burl", {"burl", "nurl"},
                    "which notice debits the budget: the billing notice, or the win notice");
  config.add_bool("rtb", "fault_injection", false,
                  "tests: a bid request with x-mnv-fault: segv|fpe traps its handler; stall holds its shard 150 ms; "
                  "with a context taken and its body parsed: segv-holding traps, raise-holding raises EIO, "
                  "hold keeps the context 30 ms");
  config.add_text("rtb", "redis", "", "host:port, or empty", [](std::string_view v, std::string* why) {
    sockaddr_in a;
    return v.empty() || LeaseKeeper::parse_address(v, &a, why);
  }, "lease campaign budgets from this Redis, shared by a fleet of bidders (apps/rtb/lease_keeper.h); empty: "
     "each process spends its campaigns' whole budgets", true);
  config.add_text("rtb", "redis_cluster", "", "host:port[,host:port...], or empty",
                  [](std::string_view v, std::string* why) {
    std::vector<sockaddr_in> seeds;
    return v.empty() || LeaseKeeper::parse_seeds(v, &seeds, why);
  }, "lease campaign budgets from this Redis Cluster (any of its nodes; the others are learnt), instead of one "
     "Redis ([rtb] redis: set one or the other)", true);
  config.add_int("rtb", "redis_lease_micros", 10'000'000, 1, std::int64_t{1} << 50,
                 "with redis or redis_cluster: micro-USD a shard leases per campaign at a time (asked again below half)");
  config.add_choice("rtb", "caps", "local", {"local", "redis"},
                    "frequency caps: counted by each user's owner shard in this process (local), or shared "
                    "by the fleet through [rtb] redis with the owner's table as a cache (apps/rtb/redis_caps.h)");
  config.add_int("rtb", "caps_cache_ms", d.caps_cache_ms, 0, 3'600'000,
                 "with caps = redis: how long a count from Redis answers checks before Redis is read again "
                 "(0: every check reads Redis; the over-cap bound grows with it)");
  config.add_int("rtb", "cap_owner_delay_ms", 0, 0, 60'000, "tests: every cap check waits this long on its owner");
}

bool configure(const Config& config, std::string* error) {
  RtbConfig& c = g_config;
  c.campaigns = config.text("campaigns");
  c.hmac_key = config.text("hmac_key");
  c.notice_base = config.text("notice_base");
  c.seat = config.text("seat");
  c.default_tmax_ms = config.integer("default_tmax_ms");
  c.safety_margin_ms = config.integer("safety_margin_ms");
  c.shed_lag_ms = config.integer("shed_lag_ms");
  if (c.safety_margin_ms >= c.default_tmax_ms) {
    *error = "[rtb] safety_margin_ms must be below default_tmax_ms";
    return false;
  }
  if (c.shed_lag_ms == 0) c.shed_lag_ms = (c.default_tmax_ms - c.safety_margin_ms) / 2;
  c.reservation_ms = config.integer("reservation_ms");
  c.max_body = static_cast<std::size_t>(config.integer("max_bid_body"));
  c.max_reservations = static_cast<std::size_t>(config.integer("max_reservations"));
  c.cap_entries = static_cast<std::size_t>(config.integer("cap_entries"));
  c.max_campaigns = static_cast<std::size_t>(config.integer("max_campaigns"));
  c.contexts = static_cast<std::size_t>(config.integer("contexts"));
  std::int64_t body_ms = config.integer("body_timeout_ms");
  g_site.options.body_timeout_ns = (body_ms > 0 ? body_ms : c.default_tmax_ms) * 1'000'000;
  for (auto [name, v] : {std::pair<const char*, std::size_t>{"max_reservations", c.max_reservations},
                         {"cap_entries", c.cap_entries}}) {
    if ((v & (v - 1)) != 0) {
      *error = std::string("[rtb] ") + name + " = " + std::to_string(v) + ": must be a power of two";
      return false;
    }
  }
  c.cap_timeout_bids = config.text("cap_timeout") == "bid";
  c.bill_at_win = config.text("bill_at") == "nurl";
  c.fault_injection = config.boolean("fault_injection");
  c.cap_owner_delay_ms = config.integer("cap_owner_delay_ms");
  c.redis = config.text("redis");
  const std::string& cluster = config.text("redis_cluster");
  if (!c.redis.empty() && !cluster.empty()) {
    *error = config.at("redis") + " and " + config.at("redis_cluster") +
             ": [rtb] redis (one Redis) and redis_cluster (a Redis Cluster) are both set; keep the one the "
             "fleet's budgets live in";
    return false;
  }
  if (!cluster.empty()) {
    c.lease.redis_kind = LeaseKeeper::Options::Redis::kCluster;
    if (!LeaseKeeper::parse_seeds(cluster, &c.lease.redis, error)) return false;
    c.redis = cluster;
  } else if (!c.redis.empty()) {
    c.lease.redis.resize(1);
    if (!LeaseKeeper::parse_address(c.redis, &c.lease.redis[0], error)) return false;
  }
  if (!c.redis.empty()) {
    c.lease.lease = config.integer("redis_lease_micros");
    char host[64] = "bidder";
    ::gethostname(host, sizeof host - 1);
    c.lease.holder = std::string(host) + ":" + std::to_string(::getpid());
  }
  c.caps_redis = config.text("caps") == "redis";
  c.caps_cache_ms = config.integer("caps_cache_ms");
  if (c.caps_redis && c.redis.empty()) {
    *error = config.at("caps") + ": [rtb] caps = \"redis\" needs [rtb] redis = \"host:port\" (the Redis the "
             "fleet shares): set it, or caps = \"local\"";
    return false;
  }
  if (c.caps_redis && config.has("isolation") && config.text("isolation") != "off") {
    *error = config.at("caps") + ": [rtb] caps = \"redis\" needs isolation = \"off\" (its caps thread wakes "
             "request threads of other micro-processes); isolation is " + config.text("isolation");
    return false;
  }
  // The file must load now: a bidder that cannot bid does not start.
  CampaignSet set;
  if (!load_campaigns(c.campaigns, &set, error)) return false;
  g_start_campaigns.clear();
  for (const Campaign& camp : set.campaigns) g_start_campaigns.push_back(camp.id);
  g_site.options.limits.max_body = c.max_body;
  g_shared = std::make_unique<SharedObject<Shared>>();
  return true;
}

void add_metrics(metrics::Registry& reg) {
  // (Called once the shard count is known, before any shard starts: the budget book has a row
  // per shard, in memory every shard shares.)
  g_book = std::make_unique<BudgetBook>(static_cast<std::size_t>(reg.shards()), g_config.max_campaigns);
  Metrics& m = g_metrics;
  m.on = true;
  m.bid_requests_ok = reg.counter("rtb_bid_requests", "Bid requests answered with a bid.", {{"result", "bid"}});
  m.invalid = reg.counter("rtb_bid_requests", "Bid requests answered with a bid.", {{"result", "invalid"}});
  m.too_large = reg.counter("rtb_bid_requests", "Bid requests answered with a bid.", {{"result", "too_large"}});
  m.bids = reg.counter("rtb_bids", "Bids made (one per impression bid on).");
  m.spend = reg.counter("rtb_spend_micros", "Micro-USD debited by billing notices.");
  for (int i = 1; i < static_cast<int>(NoBidReason::kCount); ++i) {
    auto r = static_cast<NoBidReason>(i);
    m.no_bid[i] = reg.counter("rtb_no_bids", "Bid requests answered 204, by reason and OpenRTB nbr code.",
                              {{"reason", no_bid_name(r)}, {"nbr", std::to_string(no_bid_nbr(r))}});
  }
  for (int i = 0; i < static_cast<int>(Extra::kCount); ++i) {
    auto e = static_cast<Extra>(i);
    if (e == Extra::kTest) continue;
    m.no_bid_extra[i] = reg.counter("rtb_no_bids", "Bid requests answered 204, by reason and OpenRTB nbr code.",
                                    {{"reason", extra_name(e)}, {"nbr", std::to_string(extra_nbr(e))}});
  }
  const char* kinds[] = {"win", "bill", "loss"};
  for (int i = 0; i < 3; ++i) m.notices[i] = reg.counter("rtb_notices", "Notices accepted.", {{"kind", kinds[i]}});
  m.test_notices = reg.counter("rtb_notices", "Notices accepted.", {{"kind", "test"}});
  m.audit_notices = reg.counter("rtb_notices_unpriced", "Win or billing notices with an empty or AUDIT price (never debited).");
  for (int i = 0; i < static_cast<int>(Refusal::kCount); ++i) {
    m.refused[i] = reg.counter("rtb_notices_refused", "Notices refused, never debited, by reason.",
                               {{"reason", refusal_name(static_cast<Refusal>(i))}});
  }
  m.reloads_ok = reg.counter("rtb_reloads", "Campaign reloads (SIGHUP), per shard.", {{"result", "ok"}});
  m.reloads_refused = reg.counter("rtb_reloads", "Campaign reloads (SIGHUP), per shard.", {{"result", "refused"}});
  if (!g_config.redis.empty()) g_lease_metrics.add(reg);
  if (g_config.caps_redis) g_caps_metrics.add(reg);
  m.decide = reg.histogram("rtb_bid_seconds", "Time from a bid request's handler start to its BidResponse.");
  g_campaign_series.assign(g_config.max_campaigns, CampaignSeries{});
  g_series_slots.clear();
  for (const std::string& id : g_start_campaigns) {
    int slot = g_book->slot_of(campaign_key(id));
    if (slot < 0 || static_cast<std::size_t>(slot) >= g_campaign_series.size()) continue;
    CampaignSeries& cs = g_campaign_series[static_cast<std::size_t>(slot)];
    if (cs.on) continue;  // (the file names it twice: the loader refuses that anyway)
    cs.on = true;
    cs.spent = reg.counter("rtb_campaign_spent_micros", "Micro-USD debited by billing notices, per campaign.",
                           {{"campaign", id}});
    cs.reserved = reg.gauge("rtb_campaign_reserved_micros",
                            "Micro-USD held by bids awaiting their notices, per campaign.", {{"campaign", id}});
    cs.total_budget = reg.gauge("rtb_campaign_budget_micros",
                                "A campaign's budget (on shard 0 only: sum without (shard) gives it).",
                                {{"campaign", id}, {"kind", "total"}});
    cs.daily_budget = reg.gauge("rtb_campaign_budget_micros",
                                "A campaign's budget (on shard 0 only: sum without (shard) gives it).",
                                {{"campaign", id}, {"kind", "daily"}});
    g_series_slots.push_back(slot);
  }
}

bool init_shard(Shard& shard, Server&, std::string* error) {
  if (shard.index() >= std::size(g_state)) {
    *error = "rtb: at most 256 shards";
    return false;
  }
  auto s = std::make_unique<ShardState>();
  s->index = shard.index();
  s->budget = std::make_unique<ShardBudget>(
      g_book.get(), shard.index(),
      ShardBudget::Options{.max_reservations = g_config.max_reservations, .lifetime_ns = g_config.reservation_ms * 1'000'000});
  s->budget->attach(shard);
  s->budget->on_debit(on_debit, s.get());
  s->caps = std::make_unique<FreqCaps>(g_config.cap_entries, g_config.caps_redis ? g_config.caps_cache_ms : 0);
  s->caps->attach(shard);
  if (g_config.caps_redis) {
    auto rc = std::make_unique<RedisCaps>(
        s->caps.get(), RedisCaps::Options{.redis = g_config.lease.redis[0], .max_slots = g_config.max_campaigns},
        &g_caps_metrics);
    s->redis_caps = rc.get();
    s->cap_keeper = std::move(rc);
  } else {
    s->cap_keeper = std::make_unique<LocalCaps>(s->caps.get());
  }
  s->caps->set_check_delay_ns(g_config.cap_owner_delay_ms * 1'000'000);
  s->signer = std::make_unique<NoticeSigner>(g_config.hmac_key);
  s->gzip = std::make_unique<Gzip>();
  s->pacers.resize(g_config.max_campaigns);
  s->campaign_of_slot.assign(g_config.max_campaigns, -1);
  s->spent_published.assign(g_config.max_campaigns, 0);
  for (std::size_t i = 0; i < g_config.contexts; ++i) {
    s->contexts.push_back(std::make_unique<Context>(g_config.max_body));
    s->contexts.back()->next_free = s->free;
    s->free = s->contexts.back().get();
  }
  s->rng ^= shard.index() * 0x9E3779B97F4A7C15ull;
  s->gen_seen = (*g_shared)->generation.load(std::memory_order_acquire);
  if (!g_config.redis.empty()) {
    s->keeper = std::make_unique<LeaseKeeper>(s->budget.get(), shard.index(), g_config.lease, &g_lease_metrics);
  }
  ShardState& st = *s;
  g_state[shard.index()] = std::move(s);
  if (!load_generation(st, error)) return false;
  if (st.keeper && !st.keeper->start(shard.kernel(), error)) return false;
  if (st.redis_caps != nullptr && !st.redis_caps->start(shard.kernel(), error)) return false;
  st.ticker_pool = std::make_unique<HeapPool>(4, 1);
  if (shard.kernel().start(*st.ticker_pool, ticker) == nullptr) {
    *error = "rtb: the shard's ticker could not start";
    return false;
  }
  return true;
}

void fini_shard(Shard& shard, Server&) {
  std::size_t i = shard.index();
  if (i < std::size(g_state) && g_state[i]) {
    std::fprintf(stderr, "rtb: shard %zu: %zu bids awaiting notices, %llu refused for a full ring\n", i,
                 g_state[i]->budget->live_reservations(),
                 static_cast<unsigned long long>(g_state[i]->budget->refused_full()));
  }
}

void request_reload() { (*g_shared)->generation.fetch_add(1, std::memory_order_acq_rel); }

}  // namespace mnv::rtb
