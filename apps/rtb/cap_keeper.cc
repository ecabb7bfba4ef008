// apps/rtb/cap_keeper.cc — local frequency caps (cap_keeper.h).
#include "apps/rtb/cap_keeper.h"

#include "runtime/clock.h"
#include "shard/shard.h"

namespace mnv::rtb {

void record_at_owner(FreqCaps& local, const FreqCaps::Record& r) {
  Shard* shard = Shard::current();
  std::size_t owner = cap_owner(r.user, shard->set().size());
  if (owner == shard->index()) {
    local.record(r, monotonic_ns() / 1'000'000);
  } else {
    shard->post(owner, kCapRecord, &r, sizeof r);
  }
}

Task<CapAnswer> LocalCaps::check(const FreqCaps::Query& q, std::int64_t deadline_ns) {
  return ask_caps(*caps_, q, deadline_ns);  // (its task itself: no frame of its own)
}

Task<> LocalCaps::record(const FreqCaps::Record& r) {
  record_at_owner(*caps_, r);
  co_return;
}

}  // namespace mnv::rtb
