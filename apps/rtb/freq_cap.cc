#include "apps/rtb/freq_cap.h"

#include <cerrno>
#include <cstring>

#include "apps/rtb/bid_request.h"
#include "mem/log.h"
#include "runtime/clock.h"
#include "shard/cross_call.h"
#include "shard/mailbox.h"
#include "shard/shard.h"

namespace mnv::rtb {

namespace {

// FNV-1a, then a final mix (the owner is key % shards: the low bits must be good).
std::uint64_t hash_id(std::string_view s, std::uint64_t salt) {
  std::uint64_t h = 0xcbf29ce484222325ull ^ salt;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h == 0 ? 1 : h;
}

}  // namespace

std::uint64_t user_key(const BidRequest& r) {
  // Salted by which id it is: an exchange's user.id and our buyeruid are different namespaces.
  if (!r.user.id.empty()) return hash_id(r.user.id, 1);
  if (!r.user.buyeruid.empty()) return hash_id(r.user.buyeruid, 2);
  if (!r.device.ifa.empty()) return hash_id(r.device.ifa, 3);
  return 0;
}

CapTable::CapTable(std::size_t entries) {
  MNV_ASSERT(entries >= kBucket && (entries & (entries - 1)) == 0);
  entries_ = std::make_unique<Entry[]>(entries);
  std::memset(entries_.get(), 0, sizeof(Entry) * entries);
  mask_ = entries - 1;
}

CapTable::Entry* CapTable::bucket(std::uint64_t user, std::uint32_t slot) const {
  std::uint64_t h = (user ^ (std::uint64_t{slot} * 0x9E3779B97F4A7C15ull)) * 0xff51afd7ed558ccdull;
  std::size_t first = static_cast<std::size_t>(h >> 20) & mask_ & ~(kBucket - 1);
  return &entries_[first];
}

const CapTable::Entry* CapTable::find(std::uint64_t user, std::uint32_t slot, std::int64_t now_ms) const {
  const Entry* b = bucket(user, slot);
  for (std::size_t i = 0; i < kBucket; ++i) {
    const Entry& e = b[i];
    if (e.user == user && e.slot == slot && e.end_ms > now_ms) return &e;
  }
  return nullptr;
}

bool CapTable::allows(std::uint64_t user, std::uint32_t slot, std::uint32_t limit, std::int64_t now_ms) const {
  const Entry* e = find(user, slot, now_ms);
  return e != nullptr ? e->count < limit : limit > 0;
}

CapTable::Look CapTable::look(std::uint64_t user, std::uint32_t slot, std::uint32_t limit, std::int64_t now_ms,
                              std::int64_t fresh_ms) const {
  const Entry* e = find(user, slot, now_ms);
  if (e == nullptr) return Look{limit > 0, false, false};
  return Look{e->count < limit, true, e->synced_ms != 0 && now_ms - e->synced_ms < fresh_ms};
}

CapTable::Entry* CapTable::take(std::uint64_t user, std::uint32_t slot, std::uint32_t window_s, std::int64_t now_ms) {
  Entry* b = bucket(user, slot);
  Entry* free = nullptr;
  Entry* oldest = &b[0];
  for (std::size_t i = 0; i < kBucket; ++i) {
    Entry& e = b[i];
    bool live = e.end_ms > now_ms;
    if (e.user == user && e.slot == slot && live) return &e;
    if (!live && free == nullptr) free = &e;
    if (e.end_ms < oldest->end_ms) oldest = &e;
  }
  if (free == nullptr) {
    free = oldest;
    ++evictions_;
  }
  *free = Entry{user, slot, 0, now_ms + std::int64_t{window_s} * 1000, 0};
  return free;
}

void CapTable::record(std::uint64_t user, std::uint32_t slot, std::uint32_t window_s, std::int64_t now_ms) {
  ++take(user, slot, window_s, now_ms)->count;
}

void CapTable::fill(std::uint64_t user, std::uint32_t slot, std::uint32_t count, std::uint32_t window_s,
                    std::int64_t asked_ms, std::int64_t now_ms) {
  MNV_ASSERT(asked_ms > 0);
  Entry* e = take(user, slot, window_s, now_ms);
  if (e->synced_ms > asked_ms) return;  // a later answer is already in
  e->count = count;
  e->synced_ms = asked_ms;
}

void FreqCaps::attach(Shard& shard) {
  shard.handle(kCapCheck, check_handler, this);
  shard.on_post(kCapRecord, record_handler, this);
  shard.on_post(kCapFill, fill_handler, this);
}

FreqCaps::Seen FreqCaps::check(const Query& q, std::int64_t now_ms) const {
  Seen s;
  for (int i = 0; i < kMaxCheck; ++i) {
    if (q.items[i].slot == ~0u) continue;
    CapTable::Look l = table_.look(q.user, q.items[i].slot, q.items[i].limit, now_ms, fresh_ms_);
    s.allowed |= l.allowed ? 1u << i : 0;
    s.known |= l.known ? 1u << i : 0;
    s.fresh |= l.fresh ? 1u << i : 0;
  }
  return s;
}

void FreqCaps::check_handler(const ShardMessage& req, ShardMessage* reply, void* ctx) {
  auto* self = static_cast<FreqCaps*>(ctx);
  if (self->check_delay_ns_ > 0) {  // (tests: an owner too busy to answer in time)
    std::int64_t until = monotonic_ns() + self->check_delay_ns_;
    while (monotonic_ns() < until) {
    }
  }
  Query q;
  static_assert(sizeof(Query) <= kShardPayload);
  std::memcpy(&q, req.payload, sizeof q);
  Seen seen = self->check(q, monotonic_ns() / 1'000'000);
  static_assert(sizeof(Seen) <= kShardPayload);
  std::memcpy(reply->payload, &seen, sizeof seen);
}

void FreqCaps::record_handler(const ShardMessage& m, void* ctx) {
  Record r;
  static_assert(sizeof(Record) <= kShardPayload);
  std::memcpy(&r, m.payload, sizeof r);
  static_cast<FreqCaps*>(ctx)->record(r, monotonic_ns() / 1'000'000);
}

void FreqCaps::fill_handler(const ShardMessage& m, void* ctx) {
  Fill f;
  static_assert(sizeof(Fill) <= kShardPayload);
  std::memcpy(&f, m.payload, sizeof f);
  static_cast<FreqCaps*>(ctx)->fill(f, monotonic_ns() / 1'000'000);
}

Task<CapAnswer> ask_caps(FreqCaps& local, const FreqCaps::Query& q, std::int64_t deadline_ns) {
  Shard* shard = Shard::current();
  std::size_t owner = cap_owner(q.user, shard->set().size());
  std::int64_t now = monotonic_ns();
  CapAnswer a;
  auto take = [&a](const FreqCaps::Seen& s) {
    a.allowed = s.allowed;
    a.known = s.known;
    a.fresh = s.fresh;
  };
  if (owner == shard->index()) {
    take(local.check(q, now / 1'000'000));
    co_return a;
  }
  if (now >= deadline_ns) {
    a.error = ETIMEDOUT;
    co_return a;
  }
  ShardMessage reply = co_await cross_call_status(owner, kCapCheck, &q, sizeof q, deadline_ns - now, &a.error);
  if (a.error == 0) {
    FreqCaps::Seen seen;
    std::memcpy(&seen, reply.payload, sizeof seen);
    take(seen);
  }
  co_return a;
}

}  // namespace mnv::rtb
