// apps/rtb/lease_keeper.h — a shard's campaign budgets leased from Redis ([rtb] redis, or a
// Redis Cluster: [rtb] redis_cluster), for a fleet of bidder processes sharing one budget per
// campaign (redis/budget_lease.h).
//
// With Redis configured, the book opens every campaign with a total of 0 and each shard runs one
// LeaseKeeper micro-thread owning its client: one redis::Connection, or one redis::Cluster (the
// slot map, MOVED and ASK followed: a campaign's keys may move between masters while the fleet
// bids). The keeper's work is the same on either; which one is chosen once, when the thread
// starts (a LeaseStore, lease_keeper.cc). Every `tick` it looks at its own shard's slice of each
// campaign (apps/rtb/budget.h): the first time, it opens the campaign in Redis (sets its budget
// if Redis holds none and it is not marked lost: the first bidder of a fleet to see a campaign
// sets it); then, whenever the slice's available is below half a lease, it leases up to `lease`
// more (an atomic script: at most what is left) and deposits the grant into the slice. A
// campaign Redis has nothing left for is asked again every second (another bidder may give
// back). On stop (SIGTERM: the kernel stopping) it withdraws each slice's available and gives it
// back, then ends. Each shard leases for itself because a slice is written by its own shard
// only; the shards of one process still lend to each other through budget.h's mailboxes.
// Holder names are "<holder>/<shard>".
//
// Redis unavailable: lease calls fail (each within the connection's deadline; reconnects back
// off), the slices keep what they hold and spend it, and a campaign whose slices run dry
// no-bids (budget) until Redis answers again; other campaigns keep bidding. Nothing restarts.
//
// Redis answers but has lost the budgets (restarted without persistence): every `check_ns` (and
// at each lease) the keeper asks whether each campaign it opened is still there. One that is
// gone is marked lost in Redis ({budget:<id>}:lost) and never set again by any bidder: the
// keeper stops leasing for it (its slices spend what they hold, then no-bid: budget), logs one
// line saying what the operator must do, and counts it in rtb_redis_budgets_lost. The operator's
// re-seed, per campaign: SET {budget:<id>}:left to what is left of the budget, then
// DEL {budget:<id>}:lost; the keepers see it within check_ns and lease again.
//
// THE OVERSPEND BOUND: 0. Money enters a slice only as a grant Redis made from what was left,
// and budget.h never spends more than its slices hold, so for each campaign
//   Σ spent by every bidder ≤ Σ granted ≤ the budget set in Redis,
// on one Redis or a Cluster alike (each campaign's keys live in one slot, so on one master at a
// time; a migration moves them together). What can be lost (budget counted as used in Redis but
// never spent): the leases of a bidder killed without giving back (at most its shards' slices'
// available + reserved), the reserved money of bids awaiting notices at give-back, and a
// give-back whose call fails. A Redis that loses its data cannot make the fleet set a budget
// twice: only a holder's first step sets one, and the keepers that opened the campaign mark it
// lost as soon as they find it gone (within check_ns), after which no bidder sets it. The one
// window left: a bidder that opens the campaign for the first time between the loss and the
// first keeper's check (≤ check_ns, 1 s) finds Redis empty and sets the whole budget again, and
// the fleet then leases from it too: the overspend is at most what had been granted before the
// loss. Nothing in an empty Redis tells that bidder from the first of a new fleet; keep Redis's
// data (AOF) and start no bidder while Redis restarts. A budget the operator re-seeds is the
// operator's number. A changed total in the campaigns file (SIGHUP)
// does not change a budget Redis already holds.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "apps/rtb/budget.h"
#include "mem/heap_pool.h"
#include "metrics/registry.h"
#include "runtime/kernel.h"

namespace mnv::rtb {

class LeaseStore;  // (lease_keeper.cc: one Redis or a Cluster, behind one interface)

// The keepers' series on /metrics (registered once, before the shards start).
struct LeaseMetrics {
  bool on = false;
  metrics::Gauge up;                            // 1 while the last call to Redis worked
  metrics::Counter calls_ok, calls_failed;      // lease, give-back and open calls
  metrics::Counter leased, returned;            // micro-USD
  metrics::Gauge lost;                          // campaigns whose budget Redis lost
  metrics::Histogram latency;                   // per call
  void add(metrics::Registry& registry);
};

class LeaseKeeper {
 public:
  struct Options {
    // Where the budgets live: one Redis (one address), or a Redis Cluster (its seeds: any of its
    // nodes; the rest are learnt from CLUSTER SLOTS).
    enum class Redis { kOne, kCluster } redis_kind = Redis::kOne;
    std::vector<sockaddr_in> redis;
    std::string holder;                       // this process's name in Redis ("/<shard>" added)
    Micros lease = 10'000'000;                // asked for at a time
    std::int64_t tick_ns = 5'000'000;         // how often the slices are looked at
    std::int64_t call_timeout_ns = 250'000'000;
    std::int64_t check_ns = 1'000'000'000;    // how often an opened campaign is looked for
  };

  LeaseKeeper(ShardBudget* budget, std::size_t shard, Options options, const LeaseMetrics* metrics);
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // The campaign in budget slot `slot` (at load and reload, on the shard's thread).
  void track(int slot, std::string_view campaign_id, Micros total);
  // Starts the micro-thread on this shard's kernel; false with *error.
  bool start(Kernel& kernel, std::string* error);

  // Parses "host:port" (an IPv4 address or localhost); false with *error.
  static bool parse_address(std::string_view text, sockaddr_in* out, std::string* error);
  // Parses "host:port[,host:port...]", at most redis::Cluster::kMaxNodes; false with *error.
  static bool parse_seeds(std::string_view text, std::vector<sockaddr_in>* out, std::string* error);

 private:
  struct Tracked {
    int slot;
    std::string id;
    Micros total;
    bool opened = false;
    bool lost = false;              // Redis lost its budget: no leases until the operator's re-seed
    std::int64_t dry_until_ns = 0;  // Redis had nothing left: not asked again before this
    std::int64_t check_at_ns = 0;   // when it is next looked for
  };
  static Thread main(LeaseKeeper* self);
  // The keeper's loop and give-back, on either store (lease_keeper.cc).
  Task<int> keep(LeaseStore& store);

  ShardBudget* budget_;
  std::string holder_;
  Options options_;
  const LeaseMetrics* metrics_;
  std::vector<Tracked> tracked_;
  bool lost_logged_ = false;
  std::unique_ptr<HeapPool> pool_;
};

}  // namespace mnv::rtb
