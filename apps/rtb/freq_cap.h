// apps/rtb/freq_cap.h — frequency caps: N impressions per user per campaign per window, each user
// owned by one shard.
//
// A user's key is a 64-bit hash of user.id, else user.buyeruid, else device.ifa (0: none of
// them; a capped campaign cannot bid for an unknown user). The key's owner shard is key % shards:
// only the owner keeps that user's counts, so nothing is shared and nothing is locked. The shard
// handling a request asks the owner with a cross-shard call (kCapCheck: the user and up to
// kMaxCheck campaigns with their limits; the reply says which are under their cap) under the
// request's deadline; a win notice tells the owner (kCapRecord, a one-way post) to count the
// impression. A call to the owner that cannot answer in time is the caller's to handle (no-bid,
// or bid without the cap: [rtb] cap_timeout).
//
// The table (CapTable): a fixed number of entries per shard, allocated at start, in buckets of 8
// (one probe); an entry is a (user, campaign) with its count and the end of its window (a fixed
// window from the first impression). An expired entry is free; a full bucket gives up its entry
// whose window ends first (counted as an eviction: that user may then see that campaign again
// early). Memory: 32 bytes per entry — the default 2^18 entries is 8 MiB per shard.
//
// With the caps shared through Redis ([rtb] caps = "redis", apps/rtb/redis_caps.h) the same
// table is the owner's cache in front of Redis: an entry also keeps when Redis last gave its
// count (kCapFill, a post: a count read or incremented there), and a check's answer says, per
// item, whether the owner knows a count at all and whether that count is fresh (from Redis
// within the freshness bound the FreqCaps was made with). Local caps ignore both.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "runtime/thread.h"

namespace mnv {
class Shard;
struct ShardMessage;
}

namespace mnv::rtb {

struct BidRequest;

inline constexpr std::uint32_t kCapCheck = 19;   // call: {user, [slot, limit] x kMaxCheck}
inline constexpr std::uint32_t kCapRecord = 20;  // post: {user, slot, window_s}
inline constexpr std::uint32_t kCapFill = 21;    // post: {user, slot, window_s, count, asked_ms}

// The user's key (0: no id of any kind).
std::uint64_t user_key(const BidRequest& request);
inline std::size_t cap_owner(std::uint64_t user, std::size_t shards) { return static_cast<std::size_t>(user % shards); }

class CapTable {
 public:
  explicit CapTable(std::size_t entries);  // a power of two, at least 8
  // Whether (user, slot) has had fewer than `limit` impressions in its current window.
  bool allows(std::uint64_t user, std::uint32_t slot, std::uint32_t limit, std::int64_t now_ms) const;
  // Counts one impression (a new window of window_s when there is none running).
  void record(std::uint64_t user, std::uint32_t slot, std::uint32_t window_s, std::int64_t now_ms);
  // What the table says of (user, slot): under `limit`; a count is kept at all (else: none seen,
  // allowed when limit > 0); that count came from Redis less than fresh_ms before now_ms.
  struct Look {
    bool allowed, known, fresh;
  };
  Look look(std::uint64_t user, std::uint32_t slot, std::uint32_t limit, std::int64_t now_ms,
            std::int64_t fresh_ms) const;
  // Redis said (user, slot) is at `count`, asked at asked_ms: the entry takes it unless it holds
  // a count Redis gave later (fills from several shards may arrive out of order). A window of
  // window_s opens when none runs (Redis keeps the key's own expiry; the next fill corrects).
  void fill(std::uint64_t user, std::uint32_t slot, std::uint32_t count, std::uint32_t window_s,
            std::int64_t asked_ms, std::int64_t now_ms);
  std::uint64_t evictions() const { return evictions_; }
  std::size_t entries() const { return mask_ + 1; }

 private:
  struct Entry {
    std::uint64_t user;
    std::uint32_t slot;
    std::uint32_t count;
    std::int64_t end_ms;     // the window's end; 0: free
    std::int64_t synced_ms;  // when Redis gave `count` (its asking time); 0: a local count
  };
  static_assert(sizeof(Entry) == 32);
  static constexpr std::size_t kBucket = 8;
  Entry* bucket(std::uint64_t user, std::uint32_t slot) const;
  const Entry* find(std::uint64_t user, std::uint32_t slot, std::int64_t now_ms) const;
  // The live entry of (user, slot), else a new one (a free one, else the bucket's first to end).
  Entry* take(std::uint64_t user, std::uint32_t slot, std::uint32_t window_s, std::int64_t now_ms);
  std::unique_ptr<Entry[]> entries_;
  std::size_t mask_;
  std::uint64_t evictions_ = 0;
};

// One shard's side of the caps: its table, and the handlers the other shards call.
class FreqCaps {
 public:
  static constexpr int kMaxCheck = 5;
  struct Query {
    std::uint64_t user;
    struct Item {
      std::uint32_t slot;   // ~0u: unused
      std::uint32_t limit;
    } items[kMaxCheck];
  };
  struct Record {
    std::uint64_t user;
    std::uint32_t slot;
    std::uint32_t window_s;
  };
  struct Fill {
    std::uint64_t user;
    std::uint32_t slot;
    std::uint32_t window_s;
    std::uint32_t count;
    std::int64_t asked_ms;  // (monotonic) when the Redis command was sent
  };
  // The owner's answer: bit i of each for items[i] (CapTable::Look).
  struct Seen {
    std::uint32_t allowed = 0, known = 0, fresh = 0;
  };

  // fresh_ms: how long a count from Redis stays fresh (0: never; local caps never fill).
  explicit FreqCaps(std::size_t entries, std::int64_t fresh_ms = 0) : table_(entries), fresh_ms_(fresh_ms) {}
  // Registers kCapCheck, kCapRecord and kCapFill on this shard (in its init).
  void attach(Shard& shard);
  // The answer to a query, here.
  Seen check(const Query& q, std::int64_t now_ms) const;
  void record(const Record& r, std::int64_t now_ms) { table_.record(r.user, r.slot, r.window_s, now_ms); }
  void fill(const Fill& f, std::int64_t now_ms) {
    table_.fill(f.user, f.slot, f.count, f.window_s, f.asked_ms, now_ms);
  }
  const CapTable& table() const { return table_; }

  // How long the owner takes to answer a check (tests: a slow owner). 0: at once.
  void set_check_delay_ns(std::int64_t ns) { check_delay_ns_ = ns; }

 private:
  static void check_handler(const ShardMessage& req, ShardMessage* reply, void* ctx);
  static void record_handler(const ShardMessage& m, void* ctx);
  static void fill_handler(const ShardMessage& m, void* ctx);
  CapTable table_;
  std::int64_t fresh_ms_;
  std::int64_t check_delay_ns_ = 0;
};

// What the owner said: bit i of `allowed` for query item i (known, fresh: FreqCaps::Seen);
// `unknown` (a CapKeeper's, apps/rtb/cap_keeper.h): items nobody could answer for in time,
// which [rtb] cap_timeout decides; `error` is 0, or ETIMEDOUT when the owner did not answer by
// the deadline (ECONNRESET: its process died; ENOBUFS: too many calls).
struct CapAnswer {
  std::uint32_t allowed = 0;
  std::uint32_t known = 0;
  std::uint32_t fresh = 0;
  std::uint32_t unknown = 0;
  int error = 0;
};
// Asks the owner of q.user (this shard's own table at once, without a message) under a deadline
// (CLOCK_MONOTONIC ns). On a shard thread, in a micro-thread. Raises nothing.
Task<CapAnswer> ask_caps(FreqCaps& local, const FreqCaps::Query& q, std::int64_t deadline_ns);

}  // namespace mnv::rtb
