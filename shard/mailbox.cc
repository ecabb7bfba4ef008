// shard/mailbox.cc — the cross-shard mailboxes (see mailbox.h for the design and the sleep
// protocol's argument).
#include "shard/mailbox.h"

#include "mem/log.h"

namespace mnv {
namespace {

// A counter written by one thread and read by any: a relaxed load and store, no locked add.
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

}  // namespace

// The layout, in the order the constructor takes it: rings, their slots, sleep states, locals,
// dirty lists. (The diagonal's rings are never used: they get the smallest ring, 2 slots.)
std::size_t Mailboxes::region_bytes(std::size_t shards, std::size_t capacity) {
  std::size_t n = 0;
  n = SharedRegion::grow(n, sizeof(Ring) * shards * shards, alignof(Ring));
  for (std::size_t from = 0; from < shards; ++from) {
    for (std::size_t to = 0; to < shards; ++to) {
      n = SharedRegion::grow(n, sizeof(ShardMessage) * (from == to ? 2 : capacity), Ring::slot_align());
    }
  }
  n = SharedRegion::grow(n, sizeof(SleepState) * shards, alignof(SleepState));
  n = SharedRegion::grow(n, sizeof(Local) * shards, alignof(Local));
  return SharedRegion::grow(n, sizeof(std::uint32_t) * shards * shards, alignof(std::uint32_t));
}

Mailboxes::Mailboxes(std::size_t shards, std::size_t capacity_per_ring)
    : shards_(shards), capacity_(capacity_per_ring), region_(region_bytes(shards, capacity_per_ring)) {
  MNV_ASSERT(shards >= 1 && shards <= UINT32_MAX);
  MNV_ASSERT(capacity_per_ring >= 2 && (capacity_per_ring & (capacity_per_ring - 1)) == 0);
  rings_ = static_cast<Ring*>(region_.take(sizeof(Ring) * shards * shards, alignof(Ring)));
  for (std::size_t from = 0; from < shards; ++from) {
    for (std::size_t to = 0; to < shards; ++to) {
      // Slots from the zeroed mapping: zero bytes are valid messages (trivially copyable).
      std::size_t capacity = from == to ? 2 : capacity_per_ring;
      auto* slots = static_cast<ShardMessage*>(region_.take(sizeof(ShardMessage) * capacity, Ring::slot_align()));
      new (&rings_[from * shards + to]) Ring(slots, capacity);
    }
  }
  sleep_ = region_.make_array<SleepState>(shards);
  local_ = region_.make_array<Local>(shards);
  dirty_storage_ = region_.make_array<std::uint32_t>(shards * shards);
  for (std::size_t i = 0; i < shards; ++i) local_[i].dirty = &dirty_storage_[i * shards];
}

Mailboxes::~Mailboxes() {
  for (std::size_t i = 0; i < shards_ * shards_; ++i) rings_[i].~Ring();
  for (std::size_t i = 0; i < shards_; ++i) {
    sleep_[i].~SleepState();
    local_[i].~Local();
  }
}

void Mailboxes::set_waker(std::size_t shard, Waker fn, void* ctx) {
  MNV_ASSERT(shard < shards_);
  sleep_[shard].waker = fn;
  sleep_[shard].waker_ctx = ctx;
}

bool Mailboxes::send(std::size_t from, std::size_t to, const ShardMessage& m) {
  MNV_ASSERT(from < shards_ && to < shards_ && from != to);
  Local& me = local_[from];
  Ring& r = ring(from, to);
  ShardMessage copy = m;
  copy.from = static_cast<std::uint32_t>(from);
  if (!r.try_stage(copy)) {
    bump(me.refused);
    return false;
  }
  if (r.unpublished() == 1) {  // first message for `to` since the last flush
    MNV_ASSERT(me.dirty_count < shards_);
    me.dirty[me.dirty_count++] = static_cast<std::uint32_t>(to);
  }
  bump(me.sent);
  return true;
}

void Mailboxes::flush(std::size_t from) {
  MNV_ASSERT(from < shards_);
  Local& me = local_[from];
  std::uint64_t woken = 0;
  for (std::size_t i = 0; i < me.dirty_count; ++i) {
    std::size_t to = me.dirty[i];
    // seq_cst store, then seq_cst load of the flag: the sender's half of the handshake.
    ring(from, to).publish(std::memory_order_seq_cst);
    SleepState& s = sleep_[to];
    if (s.asleep.load(std::memory_order_seq_cst) != 0 &&
        s.asleep.exchange(0, std::memory_order_seq_cst) != 0) {
      MNV_ASSERT(s.waker != nullptr);
      s.waker(s.waker_ctx);
      ++woken;
    }
  }
  me.dirty_count = 0;
  if (woken != 0) bump(me.wakeups, woken);
}

std::size_t Mailboxes::receive(std::size_t to, ShardMessage* out, std::size_t max) {
  MNV_ASSERT(to < shards_);
  if (shards_ < 2 || max == 0) return 0;
  Local& me = local_[to];
  std::size_t start = me.next_source;
  me.next_source = start + 1 == shards_ ? 0 : start + 1;
  // First pass: each source up to its share, so one busy source cannot starve the others. Second
  // pass (only if some source had more and room is left): fill up.
  std::size_t share = max / (shards_ - 1);
  if (share == 0) share = 1;
  std::size_t got = 0;
  bool more = false;
  for (int pass = 0; pass < 2 && got < max; ++pass) {
    if (pass == 1 && !more) break;
    std::size_t src = start;
    for (std::size_t k = 0; k < shards_ && got < max; ++k, src = src + 1 == shards_ ? 0 : src + 1) {
      if (src == to) continue;
      Ring& r = ring(src, to);
      std::size_t want = max - got;
      if (pass == 0 && want > share) want = share;
      std::size_t n = r.pop_batch(out + got, want);
      if (n == 0) continue;
      r.release();
      got += n;
      if (n == want && pass == 0) more = true;
    }
  }
  if (got != 0) bump(me.received, got);
  return got;
}

bool Mailboxes::has_messages(std::size_t to) {
  MNV_ASSERT(to < shards_);
  for (std::size_t src = 0; src < shards_; ++src) {
    // seq_cst load (when the cached index says empty): the receiver's half of the handshake.
    if (src != to && ring(src, to).readable(std::memory_order_seq_cst) != 0) return true;
  }
  return false;
}

void Mailboxes::prepare_sleep(std::size_t shard) {
  MNV_ASSERT(shard < shards_);
  sleep_[shard].asleep.store(1, std::memory_order_seq_cst);
}

void Mailboxes::cancel_sleep(std::size_t shard) {
  MNV_ASSERT(shard < shards_);
  sleep_[shard].asleep.store(0, std::memory_order_seq_cst);
}

void Mailboxes::wake_done(std::size_t shard) {
  MNV_ASSERT(shard < shards_);
  sleep_[shard].asleep.store(0, std::memory_order_seq_cst);
}

void Mailboxes::drop_staged(std::size_t from) {
  MNV_ASSERT(from < shards_);
  for (std::size_t to = 0; to < shards_; ++to) ring(from, to).drop_unpublished();
  local_[from].dirty_count = 0;
}

bool Mailboxes::asleep(std::size_t shard) const {
  MNV_ASSERT(shard < shards_);
  return sleep_[shard].asleep.load(std::memory_order_seq_cst) != 0;
}

MailboxStats Mailboxes::stats(std::size_t shard) const {
  MNV_ASSERT(shard < shards_);
  const Local& l = local_[shard];
  MailboxStats s;
  s.sent = l.sent.load(std::memory_order_relaxed);
  s.received = l.received.load(std::memory_order_relaxed);
  s.wakeups = l.wakeups.load(std::memory_order_relaxed);
  s.refused = l.refused.load(std::memory_order_relaxed);
  return s;
}

}  // namespace mnv
