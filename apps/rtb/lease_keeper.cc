// apps/rtb/lease_keeper.cc — a shard's campaign budgets leased from Redis (lease_keeper.h).
#include "apps/rtb/lease_keeper.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "net/io.h"
#include "redis/budget_lease.h"
#include "redis/connection.h"
#include "runtime/clock.h"
#include "shard/shard.h"

namespace mnv::rtb {

void LeaseMetrics::add(metrics::Registry& reg) {
  on = true;
  up = reg.gauge("rtb_redis_up", "1 while this shard's last call to Redis (budget leases) worked, else 0.");
  calls_ok = reg.counter("rtb_redis_lease_calls", "Budget lease calls to Redis (open, lease, give back).",
                         {{"result", "ok"}});
  calls_failed = reg.counter("rtb_redis_lease_calls", "Budget lease calls to Redis (open, lease, give back).",
                             {{"result", "failed"}});
  leased = reg.counter("rtb_redis_leased_micros", "Micro-USD leased from Redis into this shard's slices.");
  returned = reg.counter("rtb_redis_returned_micros", "Micro-USD given back to Redis (on SIGTERM).");
  latency = reg.histogram("rtb_redis_lease_call_seconds", "Latency of a budget lease call to Redis.");
}

bool LeaseKeeper::parse_address(std::string_view text, sockaddr_in* out, std::string* error) {
  std::size_t colon = text.rfind(':');
  std::string host(text.substr(0, colon == std::string_view::npos ? 0 : colon));
  std::string port_text(colon == std::string_view::npos ? "" : text.substr(colon + 1));
  char* end = nullptr;
  long port = port_text.empty() ? 0 : std::strtol(port_text.c_str(), &end, 10);
  if (host == "localhost") host = "127.0.0.1";
  *out = sockaddr_in{};
  out->sin_family = AF_INET;
  if (colon == std::string_view::npos || port <= 0 || port > 65535 || *end != '\0' ||
      ::inet_pton(AF_INET, host.c_str(), &out->sin_addr) != 1) {
    *error = "[rtb] redis = \"" + std::string(text) +
             "\": must be host:port with an IPv4 address or localhost (e.g. \"127.0.0.1:6379\"), or empty";
    return false;
  }
  out->sin_port = htons(static_cast<std::uint16_t>(port));
  return true;
}

LeaseKeeper::LeaseKeeper(ShardBudget* budget, std::size_t shard, Options options, const LeaseMetrics* metrics)
    : budget_(budget), holder_(options.holder + "/" + std::to_string(shard)), options_(std::move(options)),
      metrics_(metrics) {}

void LeaseKeeper::track(int slot, std::string_view campaign_id, Micros total) {
  for (Tracked& t : tracked_) {
    if (t.slot == slot) return;  // (a reload: Redis's budget stands)
  }
  tracked_.push_back(Tracked{slot, std::string(campaign_id), total});
}

bool LeaseKeeper::start(Kernel& kernel, std::string* error) {
  pool_ = std::make_unique<HeapPool>(64, 1);
  if (!pool_->ok() || kernel.start(*pool_, main, this) == nullptr) {
    *error = "rtb: the budget lease keeper could not start";
    return false;
  }
  return true;
}

Thread LeaseKeeper::main(LeaseKeeper* self) {
  redis::ConnectionOptions co;
  co.connect_timeout_ns = self->options_.call_timeout_ns;
  co.call_timeout_ns = self->options_.call_timeout_ns;
  co.backoff_min_ns = 10'000'000;
  co.backoff_max_ns = 500'000'000;
  redis::Connection c(co);
  c.set_address(reinterpret_cast<const sockaddr*>(&self->options_.redis), sizeof self->options_.redis);
  redis::BudgetLeases leases;
  const LeaseMetrics* m = self->metrics_->on ? self->metrics_ : nullptr;
  const metrics::ShardCells* cells = m != nullptr ? &Shard::current()->metrics() : nullptr;
  int last_error = 0;
  // One call's bookkeeping: the up gauge, the counts and the latency; a new failure is logged.
  auto note = [&](int e, std::int64_t started) {
    if (cells != nullptr) {
      cells->add(e == 0 ? m->calls_ok : m->calls_failed);
      cells->set(m->up, e == 0 ? 1 : 0);
      cells->record(m->latency, static_cast<std::uint64_t>(monotonic_ns() - started));
    }
    if (e != 0 && e != last_error) {
      std::fprintf(stderr, "rtb: %s: budget leases: Redis: %s (campaigns bid on what they hold; retrying)\n",
                   self->holder_.c_str(), leases.why()[0] != '\0' ? leases.why() : c.why());
    } else if (e == 0 && last_error != 0) {
      std::fprintf(stderr, "rtb: %s: budget leases: Redis answers again\n", self->holder_.c_str());
    }
    last_error = e;
  };
  const Micros low = self->options_.lease / 2;
  Kernel* k = Kernel::current();
  while (!k->stopping()) {
    std::int64_t now = monotonic_ns();
    for (Tracked& t : self->tracked_) {
      if (!t.opened) {
        bool created = false;
        int e = co_await leases.open(c, t.id, t.total, &created);
        note(e, now);
        if (e != 0) break;  // (Redis is away: the next tick tries again)
        t.opened = true;
      }
      if (t.dry_until_ns > now || self->budget_->available(t.slot) >= low) continue;
      std::int64_t started = monotonic_ns();
      std::int64_t granted = 0;
      int e = co_await leases.lease(c, t.id, self->holder_, self->options_.lease, &granted);
      note(e, started);
      if (e != 0) break;
      if (granted > 0) {
        self->budget_->deposit(t.slot, granted);
        if (cells != nullptr) cells->add(m->leased, static_cast<std::uint64_t>(granted));
      } else {
        t.dry_until_ns = now + 1'000'000'000;
      }
    }
    co_await sleep_until(monotonic_ns() + self->options_.tick_ns);
  }
  // Stopping: give back what the slices have not reserved or spent.
  for (Tracked& t : self->tracked_) {
    if (!t.opened) continue;
    Micros unspent = self->budget_->withdraw(t.slot);
    std::int64_t started = monotonic_ns();
    std::int64_t returned = 0;
    int e = co_await leases.give_back(c, t.id, self->holder_, unspent, &returned);
    note(e, started);
    if (e == 0 && cells != nullptr) cells->add(m->returned, static_cast<std::uint64_t>(returned));
  }
  co_return;
}

}  // namespace mnv::rtb
