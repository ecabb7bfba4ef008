// apps/rtb/cap_keeper.h — where a shard's frequency caps are decided: one interface, two
// behaviours, chosen by [rtb] caps.
//
//   LocalCaps  ("local", the default; one machine): the user's owner shard's table is the truth
//              (freq_cap.h): a check asks the owner, a win posts the impression to it.
//   RedisCaps  ("redis"; a fleet, apps/rtb/redis_caps.h): Redis holds the counts fleet-wide and
//              the owner's table is a cache in front of it.
//
// Both run on the shard handling the request or the notice, in its micro-thread; neither
// raises, neither allocates.
#pragma once

#include <cstdint>

#include "apps/rtb/freq_cap.h"
#include "runtime/thread.h"

namespace mnv::rtb {

class CapKeeper {
 public:
  virtual ~CapKeeper() = default;
  // The campaign in budget slot `slot`: its fleet-wide key (a hash of its id) and its cap's
  // window (at load and reload, on the shard's thread).
  virtual void track(std::uint32_t slot, std::uint64_t campaign_key, std::uint32_t window_s) = 0;
  // Which of q's items are under their caps, by the deadline (CLOCK_MONOTONIC ns). `error`:
  // the owner did not answer (everything unknown); `unknown` bits: those items only.
  virtual Task<CapAnswer> check(const FreqCaps::Query& q, std::int64_t deadline_ns) = 0;
  // One impression (a win notice) counted against r's cap; returns once it is counted as far as
  // this behaviour counts before answering the notice.
  virtual Task<> record(const FreqCaps::Record& r) = 0;
};

class LocalCaps final : public CapKeeper {
 public:
  explicit LocalCaps(FreqCaps* owner_side) : caps_(owner_side) {}
  void track(std::uint32_t, std::uint64_t, std::uint32_t) override {}
  Task<CapAnswer> check(const FreqCaps::Query& q, std::int64_t deadline_ns) override;
  Task<> record(const FreqCaps::Record& r) override;

 private:
  FreqCaps* caps_;  // this shard's table (the owner side of the users it owns)
};

// The owner's table counts r now (this shard's) or at its next loop turn (a post).
void record_at_owner(FreqCaps& local, const FreqCaps::Record& r);

}  // namespace mnv::rtb
