// apps/rtb/lease_keeper.h — a shard's campaign budgets leased from Redis ([rtb] redis), for a
// fleet of bidder processes sharing one budget per campaign (redis/budget_lease.h).
//
// With [rtb] redis set, the book opens every campaign with a total of 0 and each shard runs one
// LeaseKeeper micro-thread owning one redis::Connection. Every `tick` it looks at its own shard's
// slice of each campaign (apps/rtb/budget.h): the first time, it sets the campaign's budget in
// Redis if Redis holds none (SET NX: the first bidder of the fleet to see a campaign sets it);
// then, whenever the slice's available is below half a lease, it leases up to `lease` more
// (an atomic script: at most what is left) and deposits the grant into the slice. A campaign
// Redis has nothing left for is asked again every second (another bidder may give back). On
// stop (SIGTERM: the kernel stopping) it withdraws each slice's available and gives it back,
// then ends. Each shard leases for itself because a slice is written by its own shard only;
// the shards of one process still lend to each other through budget.h's mailboxes.
// Holder names are "<holder>/<shard>".
//
// Redis unavailable: lease calls fail (each within the connection's deadline; reconnects back
// off), the slices keep what they hold and spend it, and a campaign whose slices run dry
// no-bids (budget) until Redis answers again; other campaigns keep bidding. Nothing restarts.
//
// THE OVERSPEND BOUND: 0. Money enters a slice only as a grant Redis made from what was left,
// and budget.h never spends more than its slices hold, so for each campaign
//   Σ spent by every bidder ≤ Σ granted ≤ the budget set in Redis.
// What can be lost (budget counted as used in Redis but never spent): the leases of a bidder
// killed without giving back (at most its shards' slices' available + reserved), the reserved
// money of bids awaiting notices at give-back, and a give-back whose call fails. Redis must
// keep its data across a restart (AOF) or a bidder that opens a campaign afterwards sets the
// budget again; a keeper that has opened a campaign never sets it again. A changed total in the
// campaigns file (SIGHUP) does not change a budget Redis already holds.
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

// The keepers' series on /metrics (registered once, before the shards start).
struct LeaseMetrics {
  bool on = false;
  metrics::Gauge up;                            // 1 while the last call to Redis worked
  metrics::Counter calls_ok, calls_failed;      // lease, give-back and open calls
  metrics::Counter leased, returned;            // micro-USD
  metrics::Histogram latency;                   // per call
  void add(metrics::Registry& registry);
};

class LeaseKeeper {
 public:
  struct Options {
    sockaddr_in redis{};
    std::string holder;                       // this process's name in Redis ("/<shard>" added)
    Micros lease = 10'000'000;                // asked for at a time
    std::int64_t tick_ns = 5'000'000;         // how often the slices are looked at
    std::int64_t call_timeout_ns = 250'000'000;
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

 private:
  struct Tracked {
    int slot;
    std::string id;
    Micros total;
    bool opened = false;
    std::int64_t dry_until_ns = 0;  // Redis had nothing left: not asked again before this
  };
  static Thread main(LeaseKeeper* self);

  ShardBudget* budget_;
  std::string holder_;
  Options options_;
  const LeaseMetrics* metrics_;
  std::vector<Tracked> tracked_;
  std::unique_ptr<HeapPool> pool_;
};

}  // namespace mnv::rtb
