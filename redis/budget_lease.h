// redis/budget_lease.h — campaign budget leases in Redis, for a fleet of bidder processes.
//
// A campaign's budget lives in Redis as what is left (an integer, in the bidder's money unit,
// e.g. micro-dollars) beside a hash of what each holder (a bidder process) has leased and not
// given back. A bidder leases a slice before it spends, asks for more before it runs dry, and
// gives back what it did not spend when it stops. Both steps are single Lua scripts run with
// EVALSHA (script.h), so concurrent bidders can never lease more than is left:
//  * lease(holder, want): grants min(want, left), moves it from left to the holder's lease.
//  * give_back(holder, unspent): returns min(unspent, the holder's lease) to left and ends the
//    lease; what the holder does not give back counts as spent (a bidder that was killed loses
//    at most its lease: the overspend bound is the leases outstanding, never more).
// The keys share a {hash tag} ({budget:<campaign>}:left, {budget:<campaign>}:leases), so the
// two live in one slot of a Redis Cluster (the scripts need that); every step runs on one Redis
// (Connection) or on a Cluster. Money is an int64.
//
// This is the Redis side only: wiring it into apps/rtb's per-shard budget slices (lease on
// start and when a slice runs low, give back on SIGTERM, stop bidding when no lease is held and
// Redis is gone) is the bidder's.
#pragma once

#include <cstdint>
#include <string_view>

#include "redis/cluster.h"
#include "redis/connection.h"
#include "redis/script.h"

namespace mnv::redis {

class BudgetLeases {
 public:
  // The scripts' sources (tests read them; the server runs them).
  static const std::string_view kLeaseScript;
  static const std::string_view kGiveBackScript;

  BudgetLeases();

  // Each step on one Redis (Connection) or on a Redis Cluster (Cluster: routed by the keys'
  // slot, MOVED and ASK followed); `Client` is one of the two.
  // Sets the campaign's budget left to `amount` and forgets its leases (a new campaign).
  template <typename Client>
  Task<int> reset(Client& c, std::string_view campaign, std::int64_t amount);
  // Sets the campaign's budget left to `amount` only if Redis holds none yet (SET NX: the first
  // bidder of a fleet to open a campaign sets it, the others find it): 0 with *created.
  template <typename Client>
  Task<int> open(Client& c, std::string_view campaign, std::int64_t amount, bool* created);
  // Leases up to `want` for `holder`: 0 with *granted (0 when nothing is left), or an errno as
  // the client's call() gives them, or EPROTO with why() for an error reply.
  template <typename Client>
  Task<int> lease(Client& c, std::string_view campaign, std::string_view holder, std::int64_t want,
                  std::int64_t* granted);
  // Gives back `unspent` of holder's lease (at most the lease) and ends it: 0 with *returned.
  template <typename Client>
  Task<int> give_back(Client& c, std::string_view campaign, std::string_view holder, std::int64_t unspent,
                      std::int64_t* returned);
  // What is left of the budget (not leased): 0 with *left.
  template <typename Client>
  Task<int> left(Client& c, std::string_view campaign, std::int64_t* left);

  const char* why() const { return why_; }

 private:
  // "{budget:<campaign>}:left" and ":leases" into keys_.
  bool make_keys(std::string_view campaign);
  template <typename Client>
  Task<int> run(Script& s, Client& c, std::string_view holder, std::int64_t amount, std::int64_t* out);

  Script lease_;
  Script give_back_;
  char left_key_[96];
  char leases_key_[96];
  std::uint8_t left_len_ = 0;
  std::uint8_t leases_len_ = 0;
  char why_[256] = {};
};

}  // namespace mnv::redis
