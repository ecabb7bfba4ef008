// apps/rtb/redis_caps.h — frequency caps shared by a fleet of bidders through Redis ([rtb] caps =
// "redis"), with each user's owner shard's table (freq_cap.h) as a cache in front of it.
//
// Redis holds one counter per (user, campaign): `cap:{USER}:CAMPAIGN` (USER the 64-bit user key,
// CAMPAIGN a hash of the campaign id, both in hex: the same on every bidder; the {hash tag} keeps
// a user's campaigns in one Cluster slot), counted by INCR and given its window by
// `EXPIRE key window_s NX` (a fixed window from the first impression, as the local table's).
//
//  * A check asks the owner shard first, as local caps do (kCapCheck, under the deadline). Items
//    whose cached count is fresh (read from or incremented in Redis less than [rtb]
//    caps_cache_ms ago) are answered from it. The others are read from Redis in one MGET, by
//    this shard's caps thread, within the request's deadline; the counts go to the owner's cache
//    (kCapFill) and decide. When Redis cannot answer in time (down, slow, the job queue full), an
//    item the owner has a count for keeps the cached answer, and one it has none for is
//    `unknown`: [rtb] cap_timeout decides (no-bid, or bid). Counted: rtb_caps_fallbacks.
//  * A win notice INCRs the counter (with its EXPIRE, pipelined) through this shard's caps
//    thread and waits for the reply (at most kRecordWaitNs) before answering the notice: the
//    fleet's count includes the win once the notice has its 200. The reply's count goes to the
//    owner's cache (fresh). When Redis fails, the owner's table counts it locally (as local caps
//    would), and Redis never learns of that impression.
//
// THE GUARANTEE. A bid for (user, campaign) is made only on a count that was Redis's at most
// caps_cache_ms earlier (or the owner's own count while Redis cannot answer). So in one window,
// what the fleet shows a user is at most the cap N plus the bids for that user and campaign made
// by every bidder between the moment Redis's count reached N and the moment each bidder's next
// read or INCR reply told it so: with B bidders, at most B × (the bids for that user each one
// makes within caps_cache_ms of its last sync, plus its bids whose win notices were not yet
// answered). With caps_cache_ms = 0 every check reads Redis: the excess is then the bids in
// flight (made, their wins not yet counted). A user who sees one bidder's bid, then the other's,
// one at a time (each win answered before the next request) sees at most N + (B - 1) with any
// caps_cache_ms (each bidder can place one bid on a count it last saw below N; its win's INCR
// reply then tells it), and exactly N with caps_cache_ms = 0 (tests/rtb_caps_redis_test.cc).
// Not bounded: impressions while Redis is down (counted per process only), and windows Redis
// forgets (a restart without persistence).
//
// The connection: one redis::Connection per shard, owned by this shard's caps thread (a
// connection is used from one micro-thread); request handlers and notices on this shard hand
// it jobs in a fixed queue and wait on their own job, so the shard's Redis commands go out
// pipelined, together. It is not the lease keeper's (lease_keeper.h): those are Lua scripts on
// a 250 ms timeout and 5 ms ticks, and a check's read must not queue behind one or die when a
// slow script drops that connection. Owner-side handlers cannot wait for Redis (cross-shard
// handlers answer at once), so the shard that waits is the one that asks.
//
// Waking a request from the caps thread readies a thread of another micro-process directly, so
// [rtb] caps = "redis" needs isolation = "off" (configure refuses the others).
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apps/rtb/cap_keeper.h"
#include "mem/heap_pool.h"
#include "metrics/registry.h"
#include "runtime/kernel.h"

namespace mnv::rtb {

// The caps' series on /metrics (registered once, before the shards start).
struct CapsMetrics {
  bool on = false;
  metrics::Gauge up;                              // 1 while the last call to Redis worked
  metrics::Counter hits, misses;                  // items checked: answered from a fresh cached count or not
  metrics::Counter reads_ok, reads_failed;        // MGETs
  metrics::Counter incrs_ok, incrs_failed;        // INCR + EXPIRE
  metrics::Counter fallback_cache, fallback_none; // items Redis did not answer in time: cached or unknown
  metrics::Histogram latency;                     // per job, from its send to its reply
  void add(metrics::Registry& registry);
};

class RedisCaps final : public CapKeeper {
 public:
  static constexpr std::size_t kMaxJobs = 256;      // jobs queued or in flight per shard
  static constexpr std::size_t kMaxBatch = 64;      // jobs sent together
  static constexpr std::int64_t kRecordWaitNs = 100'000'000;
  static constexpr std::size_t kKeyLen = 40;        // "cap:{16 hex}:16 hex" and a NUL

  struct Options {
    sockaddr_in redis{};
    std::size_t max_slots = 16384;                // campaign budget slots ([rtb] max_campaigns)
    std::int64_t call_timeout_ns = 100'000'000;   // a command's reply (then the connection drops)
  };

  RedisCaps(FreqCaps* owner_side, const Options& options, const CapsMetrics* metrics);
  ~RedisCaps() override;
  RedisCaps(const RedisCaps&) = delete;
  RedisCaps& operator=(const RedisCaps&) = delete;

  // Starts the caps thread on this shard's kernel; false with *error.
  bool start(Kernel& kernel, std::string* error);

  void track(std::uint32_t slot, std::uint64_t campaign_key, std::uint32_t window_s) override;
  Task<CapAnswer> check(const FreqCaps::Query& q, std::int64_t deadline_ns) override;
  Task<> record(const FreqCaps::Record& r) override;

  // The Redis key of (user, campaign) into out (kKeyLen bytes); its length.
  static std::size_t write_key(std::uint64_t user, std::uint64_t campaign_key, char* out);

 private:
  struct Job;
  class JobWait;
  class IdleWait;
  static Thread main(RedisCaps* self);
  // A free job (kMaxJobs in all), or -1.
  int take_job();
  void free_job(int j);
  void enqueue(int j);
  // The asker stops waiting for job j (it timed out, or its thread ended).
  void detach(int j);
  // Job j has its answer (or failed): its counts to the owner's cache, its asker readied.
  void finish(int j, int error);
  void count(metrics::Counter c, std::uint64_t n = 1) const;

  FreqCaps* caps_;
  Options options_;
  const CapsMetrics* metrics_;
  std::unique_ptr<Job[]> jobs_;
  int free_ = -1;                      // free jobs, linked
  int queue_[kMaxJobs];                // jobs waiting to be sent, in order
  std::size_t queue_head_ = 0, queue_len_ = 0;
  std::vector<std::uint64_t> campaign_keys_;  // by slot
  std::vector<std::uint32_t> windows_;        // by slot
  ThreadState* idle_ = nullptr;        // the caps thread, while it waits for jobs
  std::uint32_t idle_slot_ = 0;
  bool running_ = false;               // the caps thread runs (jobs are refused otherwise)
  std::unique_ptr<HeapPool> pool_;
};

}  // namespace mnv::rtb
