#include "apps/rtb/budget.h"

#include <algorithm>
#include <cstring>

#include "mem/log.h"
#include "runtime/clock.h"
#include "shard/mailbox.h"
#include "shard/shard.h"

namespace mnv::rtb {

namespace {

enum State : std::uint8_t { kFree = 0, kReserved, kWon, kBilled, kReleased };

constexpr std::int64_t kAskRoundNs = 100'000'000;

// Relaxed load + store: each sum has one writer (its shard), so no read-modify-write is needed.
inline void add(std::atomic<Micros>& a, Micros d) {
  a.store(a.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
}

struct LendMsg {
  std::uint32_t slot;
  Micros amount;  // want (kBudgetLend) or granted (kBudgetGrant)
};

std::size_t book_bytes(std::size_t shards, std::size_t campaigns) {
  std::size_t n = SharedRegion::grow(0, sizeof(std::atomic<std::uint64_t>) * campaigns, 64);
  return SharedRegion::grow(n, sizeof(BudgetSlice) * shards * campaigns, 64);
}

}  // namespace

const char* settled_name(Settled s) {
  switch (s) {
    case Settled::kDebited: return "debited";
    case Settled::kMarked: return "marked";
    case Settled::kReleased: return "released";
    case Settled::kReplayed: return "replayed";
    case Settled::kExpired: return "expired";
    case Settled::kAbovePrice: return "above_price";
  }
  return "?";
}

BudgetBook::BudgetBook(std::size_t shards, std::size_t max_campaigns)
    : shards_(shards), max_campaigns_(max_campaigns), region_(book_bytes(shards, max_campaigns)) {
  MNV_ASSERT(shards > 0 && max_campaigns > 0);
  ids_ = static_cast<std::atomic<std::uint64_t>*>(region_.take(sizeof(std::atomic<std::uint64_t>) * max_campaigns, 64));
  for (std::size_t i = 0; i < max_campaigns; ++i) new (ids_ + i) std::atomic<std::uint64_t>(0);
  slices_ = static_cast<BudgetSlice*>(region_.take(sizeof(BudgetSlice) * shards * max_campaigns, 64));
  for (std::size_t i = 0; i < shards * max_campaigns; ++i) new (slices_ + i) BudgetSlice();
}

int BudgetBook::slot_of(std::uint64_t campaign_id) {
  MNV_ASSERT(campaign_id != 0);
  // Open addressing over the id table; a slot once claimed is never given back.
  std::size_t start = static_cast<std::size_t>((campaign_id * 0x9E3779B97F4A7C15ull) >> 20) % max_campaigns_;
  for (std::size_t i = 0; i < max_campaigns_; ++i) {
    std::size_t s = (start + i) % max_campaigns_;
    std::uint64_t id = ids_[s].load(std::memory_order_acquire);
    if (id == campaign_id) return static_cast<int>(s);
    if (id == 0) {
      std::uint64_t expected = 0;
      if (ids_[s].compare_exchange_strong(expected, campaign_id, std::memory_order_acq_rel)) return static_cast<int>(s);
      if (expected == campaign_id) return static_cast<int>(s);
    }
  }
  return -1;
}

Micros BudgetBook::spent(std::size_t slot) const {
  Micros sum = 0;
  for (std::size_t k = 0; k < shards_; ++k) sum += slice(k, slot).spent.load(std::memory_order_relaxed);
  return sum;
}

Micros BudgetBook::in_hand(std::size_t slot) const {
  Micros sum = 0;
  for (std::size_t k = 0; k < shards_; ++k) {
    const BudgetSlice& s = slice(k, slot);
    sum += s.available.load(std::memory_order_relaxed) + s.reserved.load(std::memory_order_relaxed) +
           s.spent.load(std::memory_order_relaxed) + s.lent.load(std::memory_order_relaxed) -
           s.borrowed.load(std::memory_order_relaxed) - s.unreturned.load(std::memory_order_relaxed);
  }
  return sum;
}

ShardBudget::ShardBudget(BudgetBook* book, std::size_t shard, Options options)
    : book_(book), shard_(shard), options_(options), epoch_ns_(monotonic_ns()), shards_(book->shards()) {
  MNV_ASSERT(shard < book->shards());
  MNV_ASSERT(options.max_reservations >= 2 && (options.max_reservations & (options.max_reservations - 1)) == 0);
  lifetime_ms_ = static_cast<std::uint32_t>(std::max<std::int64_t>(1, options.lifetime_ns / 1'000'000));
  ring_ = std::make_unique<Entry[]>(options.max_reservations);
  std::memset(ring_.get(), 0, sizeof(Entry) * options.max_reservations);
  mask_ = options.max_reservations - 1;
  // Sequence numbers from the clock (µs): a restarted shard's never meet its last life's.
  head_ = tail_ = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(epoch_ns_ / 1000));
  asking_.resize(book->max_campaigns());
  // What a previous life of this shard reserved can never be settled now: back to available.
  for (std::size_t s = 0; s < book->max_campaigns(); ++s) {
    BudgetSlice& sl = book->slice(shard, s);
    Micros r = sl.reserved.load(std::memory_order_relaxed);
    if (r != 0) {
      sl.reserved.store(0, std::memory_order_relaxed);
      add(sl.available, r);
    }
  }
}

void ShardBudget::attach(Shard& shard) {
  shard_ptr_ = &shard;
  MNV_ASSERT(shard.set().size() <= book_->shards());
  shards_ = shard.set().size();
  shard.on_post(kBudgetLend, lend_handler, this);
  shard.on_post(kBudgetGrant, grant_handler, this);
  shard.handle(kBudgetSettle, settle_handler, this);
}

int ShardBudget::open(std::uint64_t campaign_id, Micros total, std::string* error) {
  int slot = book_->slot_of(campaign_id);
  if (slot < 0) {
    *error = "campaign " + std::to_string(campaign_id) + ": the budget book is full (" +
             std::to_string(book_->max_campaigns()) + " campaigns; raise [rtb] max_campaigns)";
    return -1;
  }
  BudgetSlice& sl = book_->slice(shard_, static_cast<std::size_t>(slot));
  auto share = [this](Micros b) {
    Micros n = static_cast<Micros>(shards_);
    return b / n + (shard_ == 0 ? b % n : 0);
  };
  Micros before = share(sl.total_seen.load(std::memory_order_relaxed));
  Micros delta = share(total) - before;
  sl.total_seen.store(total, std::memory_order_relaxed);
  if (delta >= 0) {
    add(sl.available, delta);
  } else {
    Micros avail = sl.available.load(std::memory_order_relaxed);
    Micros take = std::min(avail, -delta);
    sl.available.store(avail - take, std::memory_order_relaxed);
    add(sl.unreturned, -delta - take);
  }
  return slot;
}

void ShardBudget::deposit(int slot, Micros amount) {
  MNV_ASSERT(slot >= 0 && static_cast<std::size_t>(slot) < book_->max_campaigns() && amount >= 0);
  add(book_->slice(shard_, static_cast<std::size_t>(slot)).available, amount);
}

Micros ShardBudget::withdraw(int slot) {
  MNV_ASSERT(slot >= 0 && static_cast<std::size_t>(slot) < book_->max_campaigns());
  BudgetSlice& sl = book_->slice(shard_, static_cast<std::size_t>(slot));
  Micros all = sl.available.load(std::memory_order_relaxed);
  sl.available.store(0, std::memory_order_relaxed);
  return all;
}

Micros ShardBudget::available(int slot) const {
  return book_->slice(shard_, static_cast<std::size_t>(slot)).available.load(std::memory_order_relaxed);
}

std::uint64_t ShardBudget::reserve(int slot, Micros cost, std::int64_t now_ns) {
  MNV_ASSERT(slot >= 0 && static_cast<std::size_t>(slot) < book_->max_campaigns() && cost > 0);
  if (head_ - tail_ > mask_) {
    expire(now_ns);
    if (head_ - tail_ > mask_) {
      ++refused_full_;
      return 0;
    }
  }
  BudgetSlice& sl = book_->slice(shard_, static_cast<std::size_t>(slot));
  Micros avail = sl.available.load(std::memory_order_relaxed);
  if (avail < cost) {
    ask(slot, cost * 64, now_ns);
    return 0;
  }
  sl.available.store(avail - cost, std::memory_order_relaxed);
  add(sl.reserved, cost);
  std::uint64_t seq = head_++;
  Entry& e = ring_[seq & mask_];
  e.created_ms = now_ms(now_ns);
  e.cost = static_cast<std::uint32_t>(cost);
  e.slot = static_cast<std::uint32_t>(slot);
  e.state = kReserved;
  return seq;
}

Settled ShardBudget::settle(std::uint64_t seq, Notice kind, Micros cost, bool bill_at_win, std::int64_t now_ns) {
  expire(now_ns);
  if (seq < tail_ || seq >= head_) return Settled::kExpired;
  Entry& e = ring_[seq & mask_];
  if (e.state == kBilled || e.state == kReleased) return Settled::kReplayed;
  BudgetSlice& sl = book_->slice(shard_, e.slot);
  bool debit = kind == Notice::kBill || (kind == Notice::kWin && bill_at_win);
  if (kind == Notice::kLoss) {
    if (e.state == kWon) return Settled::kReplayed;  // a loss after a win: the win stands
    add(sl.reserved, -static_cast<Micros>(e.cost));
    add(sl.available, e.cost);
    e.state = kReleased;
    return Settled::kReleased;
  }
  if (cost > static_cast<Micros>(e.cost)) return Settled::kAbovePrice;
  if (cost < 0) return Settled::kMarked;  // an audit or an empty price: accepted, nothing moves
  if (!debit) {
    if (e.state == kWon) return Settled::kReplayed;
    e.state = kWon;
    return Settled::kMarked;
  }
  // Take the reservation first, then give: a kill in between loses money, never makes it.
  add(sl.reserved, -static_cast<Micros>(e.cost));
  add(sl.spent, cost);
  add(sl.available, static_cast<Micros>(e.cost) - cost);
  e.state = kBilled;
  if (debit_hook_ != nullptr) debit_hook_(debit_ctx_, static_cast<int>(e.slot), cost);
  return Settled::kDebited;
}

void ShardBudget::expire(std::int64_t now_ns) {
  std::uint32_t now = now_ms(now_ns);
  while (tail_ != head_) {
    Entry& e = ring_[tail_ & mask_];
    if (now - e.created_ms < lifetime_ms_) break;
    if (e.state == kReserved || e.state == kWon) {
      BudgetSlice& sl = book_->slice(shard_, e.slot);
      add(sl.reserved, -static_cast<Micros>(e.cost));
      add(sl.available, e.cost);
    }
    e.state = kFree;
    ++tail_;
  }
}

void ShardBudget::ask(int slot, Micros want, std::int64_t now_ns) {
  std::size_t n = shards_;
  if (n < 2 || shard_ptr_ == nullptr) return;
  Asking& a = asking_[static_cast<std::size_t>(slot)];
  if (a.pending != 0 && now_ns - a.since_ns < kAskRoundNs) return;
  a.pending = 0;
  a.since_ns = now_ns;
  LendMsg m{static_cast<std::uint32_t>(slot), want};
  for (std::size_t k = 0; k < n; ++k) {
    if (k == shard_) continue;
    if (shard_ptr_->post(k, kBudgetLend, &m, sizeof m)) ++a.pending;
  }
  BudgetSlice& sl = book_->slice(shard_, static_cast<std::size_t>(slot));
  sl.asks.store(sl.asks.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void ShardBudget::on_lend(std::size_t from, std::uint32_t slot, Micros want) {
  if (slot >= book_->max_campaigns()) return;
  BudgetSlice& sl = book_->slice(shard_, slot);
  Micros avail = sl.available.load(std::memory_order_relaxed);
  Micros give = std::max(std::min(want, avail), avail / 2);
  LendMsg m{slot, give};
  if (give > 0) {
    sl.available.store(avail - give, std::memory_order_relaxed);
    add(sl.lent, give);
  }
  if (!shard_ptr_->post(from, kBudgetGrant, &m, sizeof m) && give > 0) {  // refused: keep it
    add(sl.lent, -give);
    add(sl.available, give);
  }
}

void ShardBudget::on_grant(std::uint32_t slot, Micros amount) {
  if (slot >= book_->max_campaigns()) return;
  BudgetSlice& sl = book_->slice(shard_, slot);
  if (amount > 0) {
    add(sl.borrowed, amount);
    add(sl.available, amount);
  }
  Asking& a = asking_[slot];
  if (a.pending > 0) --a.pending;
}

void ShardBudget::lend_handler(const ShardMessage& m, void* ctx) {
  LendMsg l;
  std::memcpy(&l, m.payload, sizeof l);
  static_cast<ShardBudget*>(ctx)->on_lend(m.from, l.slot, l.amount);
}

void ShardBudget::grant_handler(const ShardMessage& m, void* ctx) {
  LendMsg l;
  std::memcpy(&l, m.payload, sizeof l);
  static_cast<ShardBudget*>(ctx)->on_grant(l.slot, l.amount);
}

void ShardBudget::settle_handler(const ShardMessage& req, ShardMessage* reply, void* ctx) {
  SettleRequest r;
  std::memcpy(&r, req.payload, sizeof r);
  Settled s = static_cast<ShardBudget*>(ctx)->settle(r.seq, static_cast<Notice>(r.kind), r.cost, r.bill_at_win != 0,
                                                      monotonic_ns());
  reply->payload[0] = static_cast<unsigned char>(s);
}

}  // namespace mnv::rtb
