// apps/rtb/lease_keeper.cc — a shard's campaign budgets leased from Redis (lease_keeper.h).
#include "apps/rtb/lease_keeper.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "apps/rtb/fleet_redis.h"
#include "net/io.h"
#include "redis/budget_lease.h"
#include "redis/cluster.h"
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
  lost = reg.gauge("rtb_redis_budgets_lost",
                   "Campaigns this shard stopped leasing because Redis lost their budgets (the operator re-seeds them: "
                   "apps/rtb/lease_keeper.h).");
}

// What a keeper asks of Redis, the same on one Redis and on a Redis Cluster (budget_lease.h's
// steps, on the client the store was made with).
class LeaseStore {
 public:
  virtual ~LeaseStore() = default;
  virtual Task<int> open(std::string_view campaign, std::string_view holder, Micros total, bool* created) = 0;
  virtual Task<int> check(std::string_view campaign, std::string_view holder) = 0;
  virtual Task<int> lease(std::string_view campaign, std::string_view holder, Micros want, Micros* granted) = 0;
  virtual Task<int> give_back(std::string_view campaign, std::string_view holder, Micros unspent,
                              Micros* returned) = 0;
  virtual const char* why() const = 0;
};

namespace {

// The store on one client: redis::Connection (one Redis) or redis::Cluster.
template <typename Client>
class StoreOn final : public LeaseStore {
 public:
  explicit StoreOn(Client& c) : c_(c) {}
  Task<int> open(std::string_view campaign, std::string_view holder, Micros total, bool* created) override {
    co_return co_await leases_.open(c_, campaign, holder, total, created);
  }
  Task<int> check(std::string_view campaign, std::string_view holder) override {
    co_return co_await leases_.check(c_, campaign, holder);
  }
  Task<int> lease(std::string_view campaign, std::string_view holder, Micros want, Micros* granted) override {
    co_return co_await leases_.lease(c_, campaign, holder, want, granted);
  }
  Task<int> give_back(std::string_view campaign, std::string_view holder, Micros unspent, Micros* returned) override {
    co_return co_await leases_.give_back(c_, campaign, holder, unspent, returned);
  }
  const char* why() const override { return leases_.why(); }

 private:
  Client& c_;
  redis::BudgetLeases leases_;
};

}  // namespace

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

bool LeaseKeeper::parse_seeds(std::string_view text, std::vector<sockaddr_in>* out, std::string* error) {
  out->clear();
  std::size_t at = 0;
  while (at <= text.size()) {
    std::size_t comma = text.find(',', at);
    std::string_view one = text.substr(at, comma == std::string_view::npos ? std::string_view::npos : comma - at);
    sockaddr_in a;
    std::string why;
    if (!parse_address(one, &a, &why) || out->size() == redis::Cluster::kMaxNodes) {
      *error = "[rtb] redis_cluster = \"" + std::string(text) + "\": must be host:port[,host:port...] (at most " +
               std::to_string(redis::Cluster::kMaxNodes) +
               " seeds, each an IPv4 address or localhost and a port, e.g. \"127.0.0.1:7000,127.0.0.1:7001\"), "
               "or empty; \"" + std::string(one) + "\" is " + (out->size() == redis::Cluster::kMaxNodes ? "one too many" : "not one");
      return false;
    }
    out->push_back(a);
    if (comma == std::string_view::npos) break;
    at = comma + 1;
  }
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
  const redis::ConnectionOptions co = fleet_connection_options(self->options_.call_timeout_ns);
  const std::vector<sockaddr_in>& nodes = self->options_.redis;
  MNV_ASSERT(!nodes.empty());
  // The one choice between the two: the client, and the store on it.
  if (self->options_.redis_kind == Options::Redis::kCluster) {
    redis::ClusterOptions opt;
    opt.connection = co;
    redis::Cluster cluster(opt);
    for (const sockaddr_in& seed : nodes) cluster.add_seed(reinterpret_cast<const sockaddr*>(&seed), sizeof seed);
    StoreOn<redis::Cluster> store(cluster);
    co_await self->keep(store);
  } else {
    redis::Connection c(co);
    c.set_address(reinterpret_cast<const sockaddr*>(&nodes[0]), sizeof nodes[0]);
    StoreOn<redis::Connection> store(c);
    co_await self->keep(store);
  }
  co_return;
}

Task<int> LeaseKeeper::keep(LeaseStore& store) {
  const LeaseMetrics* m = metrics_->on ? metrics_ : nullptr;
  const metrics::ShardCells* cells = m != nullptr ? &Shard::current()->metrics() : nullptr;
  int last_error = 0;
  std::int64_t lost = 0;
  // One call's bookkeeping: the up gauge, the counts and the latency; a new failure is logged.
  // (ENODATA is an answer: Redis is up and says the campaign's budget is lost.)
  auto note = [&](int e, std::int64_t started) {
    if (e == ENODATA) e = 0;
    if (cells != nullptr) {
      cells->add(e == 0 ? m->calls_ok : m->calls_failed);
      cells->set(m->up, e == 0 ? 1 : 0);
      cells->record(m->latency, static_cast<std::uint64_t>(monotonic_ns() - started));
    }
    if (e != 0 && e != last_error) {
      std::fprintf(stderr, "rtb: %s: budget leases: Redis: %s (campaigns bid on what they hold; retrying)\n",
                   holder_.c_str(), store.why());
    } else if (e == 0 && last_error != 0) {
      std::fprintf(stderr, "rtb: %s: budget leases: Redis answers again\n", holder_.c_str());
    }
    last_error = e;
  };
  // A campaign found lost (or found again after the operator's re-seed).
  auto set_lost = [&](Tracked& t, bool now_lost) {
    if (t.lost == now_lost) return;
    t.lost = now_lost;
    lost += now_lost ? 1 : -1;
    if (cells != nullptr) cells->set(m->lost, lost);
    if (now_lost && !lost_logged_) {
      lost_logged_ = true;
      std::fprintf(stderr,
                   "rtb: %s: budget leases: REDIS LOST THE BUDGETS (%s). No more leases for campaign %s nor any "
                   "other found so (rtb_redis_budgets_lost); they bid what they hold, then no-bid (budget). "
                   "The operator: for each campaign marked {budget:<id>}:lost in Redis, SET {budget:<id>}:left to "
                   "what is left of its budget, then DEL {budget:<id>}:lost; the bidders lease again by "
                   "themselves. Keep Redis's data across restarts (appendonly yes) so this does not happen.\n",
                   holder_.c_str(), store.why(), t.id.c_str());
    } else if (!now_lost) {
      std::fprintf(stderr, "rtb: %s: budget leases: campaign %s: Redis holds its budget again (re-seeded): leasing\n",
                   holder_.c_str(), t.id.c_str());
    }
  };
  const Micros low = options_.lease / 2;
  Kernel* k = Kernel::current();
  while (!k->stopping()) {
    std::int64_t now = monotonic_ns();
    for (Tracked& t : tracked_) {
      if (!t.opened) {
        bool created = false;
        int e = co_await store.open(t.id, holder_, t.total, &created);
        note(e, now);
        if (e != 0 && e != ENODATA) break;  // (Redis is away: the next tick tries again)
        t.opened = true;
        t.check_at_ns = now + options_.check_ns;
        set_lost(t, e == ENODATA);
      } else if (t.check_at_ns <= now) {  // still there? (a Redis restarted empty, a re-seed)
        std::int64_t started = monotonic_ns();
        int e = co_await store.check(t.id, holder_);
        note(e, started);
        if (e != 0 && e != ENODATA) break;
        t.check_at_ns = now + options_.check_ns;
        set_lost(t, e == ENODATA);
      }
      if (t.lost || t.dry_until_ns > now || budget_->available(t.slot) >= low) continue;
      std::int64_t started = monotonic_ns();
      Micros granted = 0;
      int e = co_await store.lease(t.id, holder_, options_.lease, &granted);
      note(e, started);
      if (e == ENODATA) {
        set_lost(t, true);
        continue;
      }
      if (e != 0) break;
      if (granted > 0) {
        budget_->deposit(t.slot, granted);
        if (cells != nullptr) cells->add(m->leased, static_cast<std::uint64_t>(granted));
      } else {
        t.dry_until_ns = now + 1'000'000'000;
      }
    }
    co_await sleep_until(monotonic_ns() + options_.tick_ns);
  }
  // Stopping: give back what the slices have not reserved or spent (not to a lost budget: it
  // would not take it).
  for (Tracked& t : tracked_) {
    if (!t.opened || t.lost) continue;
    Micros unspent = budget_->withdraw(t.slot);
    std::int64_t started = monotonic_ns();
    Micros returned = 0;
    int e = co_await store.give_back(t.id, holder_, unspent, &returned);
    note(e, started);
    if (e == 0 && cells != nullptr) cells->add(m->returned, static_cast<std::uint64_t>(returned));
  }
  co_return 0;
}

}  // namespace mnv::rtb
