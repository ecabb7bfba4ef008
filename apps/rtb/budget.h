// apps/rtb/budget.h — campaign budgets split into per-shard slices, with bid reservations.
//
// Money is integer micro-USD (Micros) everywhere; an impression costs its CPM / 1000, rounded up
// (impression_cost()). Each campaign's total budget B is split into one slice per shard
// (B / N each, the remainder on shard 0). A shard's slice is three sums it alone writes:
//   available  what it may still reserve,
//   reserved   what its live bids hold (each bid's cost, until its notice or its lifetime ends),
//   spent      what billing notices debited (the clearing cost, never above the bid's cost).
// The hot path (reserve, settle) touches only the current shard's slice: no lock, no shared
// counter, no read-modify-write another thread could race. A shard whose slice cannot cover a
// bid refuses that bid and asks every other shard for part of theirs with a one-way post
// (kLend); each answers with a grant post (kGrant) of max(min(want, available), available / 2)
// (possibly 0), subtracted from its own available before it is sent and added back if the post
// is refused. At most one round of asks per campaign is out per shard (a round whose replies
// have not all come in 100 ms, e.g. from a shard process that died, is forgotten).
//
// The slices live in a BudgetBook: one MAP_SHARED mapping made before the shards start
// (shard/shared_memory.h), so a shard restarted as a process resumes its slice instead of
// starting over with a fresh one; every sum is an atomic written only by its own shard (plain
// load + store), read by any (metrics, tests). Campaign ids get a slot in the book the first
// time any shard opens them (a compare-and-swap, at load and reload only); slots are never
// reused. open() applies a campaign's (new) total to this shard's slice: the change of this
// shard's share is added to (or taken from) its available, so the slices still add up to B.
//
// Reservations: a fixed ring of `max_reservations` entries per shard (16 bytes each: 4 MiB for
// the default 2^18), one per bid, in bid order, each living `lifetime` from its bid. A bid's id
// on this shard is its sequence number; an entry holds the slot, the cost and its state
// (reserved → won → billed, or released). expire() (called on every request) frees entries past
// their lifetime from the ring's tail, returning what they still hold to available. A notice for
// a sequence number no longer in the ring is refused as expired: a notice's replay is refused for
// as long as its entry lives (billed/released entries stay in the ring till their lifetime ends),
// and after that by its age. A full ring of live entries refuses new bids.
//
// THE OVERSPEND BOUND: 0. Every debit takes at most the cost its bid reserved (a clearing price
// above the bid is refused), a reservation is made only from available, a grant leaves one slice
// before it enters another, and no path adds money except open() with a campaign's new total.
// So at every instant, for each campaign,
//     Σ_shards (available + reserved + spent) + grants in flight = B,     hence Σ spent ≤ B.
// A shard process killed between two stores loses at most the amount it was moving (stores
// are ordered take-then-give), which only lowers the sum; its restart begins a new ring whose
// sequence numbers start past the old ones (from the clock, in µs), so the old bids' notices are
// refused as expired, and their reservations go back to available. What this does not count: wins the
// exchange notifies after the reservation's lifetime, which are refused (counted as expired) —
// set the lifetime above the exchange's notice delay. budget_test proves the bound over
// 1,000,000 bids on two shards, as threads and as processes, with wins, losses, replays,
// over-price notices, timeouts and notices settled from the other shard.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apps/rtb/money.h"
#include "shard/shared_memory.h"

namespace mnv {
class Shard;
struct ShardMessage;
}

namespace mnv::rtb {

// What one impression at `cpm_micros` (micro-USD per thousand) costs, rounded up.
inline Micros impression_cost(Micros cpm_micros) { return (cpm_micros + 999) / 1000; }

// Message kinds the budget registers on each shard (Shard::handle / on_post).
inline constexpr std::uint32_t kBudgetLend = 16;    // post: {slot, want}
inline constexpr std::uint32_t kBudgetGrant = 17;   // post: {slot, amount}
inline constexpr std::uint32_t kBudgetSettle = 18;  // call: a notice, settled on the bid's shard

// One shard's slice of one campaign: written by that shard only.
struct BudgetSlice {
  std::atomic<Micros> available{0};
  std::atomic<Micros> reserved{0};
  std::atomic<Micros> spent{0};
  std::atomic<Micros> total_seen{0};  // the campaign total this slice last applied
  std::atomic<Micros> lent{0};        // granted to other shards, ever
  std::atomic<Micros> borrowed{0};    // granted by other shards and received, ever
  std::atomic<Micros> unreturned{0};  // budget cuts this slice could not take (already gone)
  std::atomic<std::uint64_t> asks{0};  // rounds of asks sent
};

// Every shard's slices of every campaign, in memory shared by all shards (made before start).
class BudgetBook {
 public:
  BudgetBook(std::size_t shards, std::size_t max_campaigns);

  std::size_t shards() const { return shards_; }
  std::size_t max_campaigns() const { return max_campaigns_; }
  // The slot of a campaign id (> 0), claiming a free one the first time; -1 when the book is full.
  int slot_of(std::uint64_t campaign_id);
  std::uint64_t campaign_at(std::size_t slot) const { return ids_[slot].load(std::memory_order_acquire); }
  BudgetSlice& slice(std::size_t shard, std::size_t slot) { return slices_[shard * max_campaigns_ + slot]; }
  const BudgetSlice& slice(std::size_t shard, std::size_t slot) const { return slices_[shard * max_campaigns_ + slot]; }
  // Sums over shards (any thread; exact only when the shards are quiet).
  Micros spent(std::size_t slot) const;
  // available + reserved + spent + grants in flight − cuts not taken: the campaign's total.
  Micros in_hand(std::size_t slot) const;

 private:
  std::size_t shards_, max_campaigns_;
  SharedRegion region_;
  std::atomic<std::uint64_t>* ids_;
  BudgetSlice* slices_;
};

// How a notice came out against its reservation.
enum class Settled : std::uint8_t {
  kDebited,     // a billing notice: the clearing cost moved to spent, the rest back to available
  kMarked,      // a win notice where billing comes later (or an audit): nothing moved
  kReleased,    // a loss: the reservation back to available
  kReplayed,    // this bid was already billed or released: refused
  kExpired,     // no longer in the ring (past its lifetime), or never made: refused
  kAbovePrice,  // a clearing cost above the bid's: refused
};
const char* settled_name(Settled s);

// One shard's budget: its slices' hot path and its reservation ring. On the shard's thread only.
class ShardBudget {
 public:
  struct Options {
    std::size_t max_reservations = std::size_t{1} << 18;  // a power of two
    std::int64_t lifetime_ns = 5'000'000'000;
  };
  enum class Notice : std::uint8_t { kWin, kBill, kLoss };

  ShardBudget(BudgetBook* book, std::size_t shard, Options options);
  ShardBudget(const ShardBudget&) = delete;
  ShardBudget& operator=(const ShardBudget&) = delete;

  // Registers the lend, grant and settle handlers on this shard (in its init); from then on the
  // slices are split over, and asks go to, the shard set's shards (the book may hold more rows).
  void attach(Shard& shard);
  // Called after each debit on this shard (the pacer learns the spend).
  using DebitHook = void (*)(void* ctx, int slot, Micros cost);
  void on_debit(DebitHook fn, void* ctx) {
    debit_hook_ = fn;
    debit_ctx_ = ctx;
  }

  // The campaign's slot, with its total budget applied to this shard's slice; -1 (with *error)
  // when the book is full.
  int open(std::uint64_t campaign_id, Micros total, std::string* error);

  // Reserves `cost` from the campaign's slice for a new bid: the bid's sequence number (> 0), or
  // 0 when the slice cannot cover it (a round of asks goes out) or the ring is full of live bids.
  std::uint64_t reserve(int slot, Micros cost, std::int64_t now_ns);
  // A notice for bid `seq` of this shard. kWin / kBill with `cost` < 0: an audit or a price the
  // exchange left empty (marked, never debited). kBill debits `cost`; kWin debits it too when
  // `bill_at_win` (exchanges that send no billing notice), else marks. kLoss releases.
  Settled settle(std::uint64_t seq, Notice kind, Micros cost, bool bill_at_win, std::int64_t now_ns);
  // Frees reservations past their lifetime.
  void expire(std::int64_t now_ns);

  // Money from outside the book (a Redis lease, apps/rtb/lease_keeper.h), on this shard's
  // thread: deposit() adds to this shard's available; withdraw() takes all of it (to give it
  // back) and returns how much. Neither touches reserved or spent.
  void deposit(int slot, Micros amount);
  Micros withdraw(int slot);
  Micros available(int slot) const;

  BudgetBook& book() const { return *book_; }
  std::size_t live_reservations() const { return static_cast<std::size_t>(head_ - tail_); }
  std::uint64_t refused_full() const { return refused_full_; }

  // Settles a notice for a bid of `owner` from any shard: the call's payload and its reply.
  struct SettleRequest {
    std::uint64_t seq;
    Micros cost;
    std::uint8_t kind;  // Notice
    std::uint8_t bill_at_win;
  };

 private:
  struct Entry {
    std::uint32_t created_ms;  // since the budget began
    std::uint32_t cost;
    std::uint32_t slot;
    std::uint8_t state;
    std::uint8_t pad[3];
  };
  static_assert(sizeof(Entry) == 16);
  struct Asking {
    std::int64_t since_ns = 0;
    std::uint32_t pending = 0;
  };
  std::uint32_t now_ms(std::int64_t now_ns) const {
    return static_cast<std::uint32_t>((now_ns - epoch_ns_) / 1'000'000);
  }
  void ask(int slot, Micros want, std::int64_t now_ns);
  void on_lend(std::size_t from, std::uint32_t slot, Micros want);
  void on_grant(std::uint32_t slot, Micros amount);
  static void lend_handler(const ShardMessage& m, void* ctx);
  static void grant_handler(const ShardMessage& m, void* ctx);
  static void settle_handler(const ShardMessage& req, ShardMessage* reply, void* ctx);

  BudgetBook* book_;
  std::size_t shard_;
  Options options_;
  Shard* shard_ptr_ = nullptr;
  std::int64_t epoch_ns_;
  std::uint32_t lifetime_ms_;
  std::unique_ptr<Entry[]> ring_;
  std::uint64_t mask_;
  std::uint64_t head_ = 1, tail_ = 1;  // live entries: [tail_, head_); sequence numbers start at 1
  std::vector<Asking> asking_;         // [slot]
  std::uint64_t refused_full_ = 0;
  std::size_t shards_;  // the running shards (attach()); the book's rows until then
  DebitHook debit_hook_ = nullptr;
  void* debit_ctx_ = nullptr;
};

}  // namespace mnv::rtb
