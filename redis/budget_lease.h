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
// The keys share a {hash tag} ({budget:<campaign>}:left, :leases, :lost), so they live in one
// slot of a Redis Cluster (the scripts need that); every step runs on one Redis (Connection) or
// on a Cluster. Money is an int64.
//
// A Redis that loses its data (restarted without persistence, a replica promoted empty) must not
// let the fleet spend a budget twice. So only open() ever sets a budget, and only for a caller
// that has not opened the campaign before; every later step of a holder (check, lease, give
// back) that finds `left` gone marks the campaign lost instead: {budget:<campaign>}:lost names
// the holder that found it, and while it exists every step answers ENODATA (open() too: bidders
// started later do not set the budget again). Nothing sets it back by itself. The operator's
// way back, per campaign: SET {budget:<campaign>}:left to what is left of the budget, then
// DEL {budget:<campaign>}:lost (reset() does both).
//
// This is the Redis side only: wiring it into apps/rtb's per-shard budget slices (lease on
// start and when a slice runs low, give back on SIGTERM, stop bidding when no lease is held and
// Redis is gone) is the bidder's.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "redis/cluster.h"
#include "redis/connection.h"
#include "redis/script.h"

namespace mnv::redis {

class BudgetLeases {
 public:
  // The scripts' sources (tests read them; the server runs them).
  static const std::string_view kOpenScript;
  static const std::string_view kLeaseScript;
  static const std::string_view kGiveBackScript;

  BudgetLeases();

  // Each step on one Redis (Connection) or on a Redis Cluster (Cluster: routed by the keys'
  // slot, MOVED and ASK followed); `Client` is one of the two.
  // Every step: 0, or an errno as the client's call() gives them, EPROTO with why() for an error
  // reply, or ENODATA: the campaign is lost (above; why() says what the operator must do).
  // Sets the campaign's budget left to `amount`, forgets its leases and clears `lost` (a new
  // campaign, or the operator's re-seed).
  template <typename Client>
  Task<int> reset(Client& c, std::string_view campaign, std::int64_t amount);
  // The first step of a holder on a campaign: sets the budget left to `amount` only if Redis
  // holds none yet and the campaign is not lost (the first bidder of a fleet to open a campaign
  // sets it, the others find it): 0 with *created.
  template <typename Client>
  Task<int> open(Client& c, std::string_view campaign, std::string_view holder, std::int64_t amount,
                 bool* created);
  // For a campaign `holder` opened before: 0 while its budget is in Redis; ENODATA once it is
  // lost (marking it so if `left` is gone). Also the way a holder learns of the operator's re-seed.
  template <typename Client>
  Task<int> check(Client& c, std::string_view campaign, std::string_view holder);
  // Leases up to `want` for `holder`: 0 with *granted (0 when nothing is left).
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
  // "{budget:<campaign>}:left", ":leases" and ":lost" into the key buffers.
  bool make_keys(std::string_view campaign);
  // Runs `s` on the campaign's keys with `args`: 0 with *out (the script's integer, -1: lost).
  template <typename Client>
  Task<int> run(Script& s, Client& c, std::span<const std::string_view> args, std::int64_t* out);

  Script open_;
  Script lease_;
  Script give_back_;
  char left_key_[96];
  char leases_key_[96];
  char lost_key_[96];
  std::uint8_t left_len_ = 0;
  std::uint8_t leases_len_ = 0;
  std::uint8_t lost_len_ = 0;
  char why_[576] = {};
};

}  // namespace mnv::redis
