// redis/budget_lease.cc — campaign budget leases (budget_lease.h).
#include "redis/budget_lease.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace mnv::redis {

// Every script takes KEYS {left, leases, lost} and ARGV {holder, amount, ...}. A campaign whose
// `left` key is gone while a holder still uses it (Redis restarted without its data) is marked
// lost (its `lost` key, naming the holder that found it) and answers -1 until an operator sets
// `left` again and deletes `lost` (budget_lease.h).
#define MNV_BUDGET_LOST_CHECK \
  "if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end\n" \
  "if redis.call('EXISTS', KEYS[1]) == 0 then\n" \
  "  redis.call('SET', KEYS[3], 'budget lost by Redis: found by ' .. ARGV[1])\n" \
  "  return -1\n" \
  "end\n"

const std::string_view BudgetLeases::kOpenScript =
    "if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end\n"
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "if ARGV[3] == 'check' then\n"
    "  redis.call('SET', KEYS[3], 'budget lost by Redis: found by ' .. ARGV[1])\n"
    "  return -1\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[2])\n"
    "return 1\n";

const std::string_view BudgetLeases::kLeaseScript =
    "local want = tonumber(ARGV[2])\n"
    "if want == nil or want < 0 or want ~= math.floor(want) then\n"
    "  return redis.error_reply('ERR lease: the amount must be a non-negative integer, not ' .. tostring(ARGV[2]))\n"
    "end\n" MNV_BUDGET_LOST_CHECK
    "local left = tonumber(redis.call('GET', KEYS[1]))\n"
    "local grant = want\n"
    "if left < grant then grant = left end\n"
    "if grant > 0 then\n"
    "  redis.call('DECRBY', KEYS[1], grant)\n"
    "  redis.call('HINCRBY', KEYS[2], ARGV[1], grant)\n"
    "end\n"
    "return grant\n";

const std::string_view BudgetLeases::kGiveBackScript =
    "local unspent = tonumber(ARGV[2])\n"
    "if unspent == nil or unspent < 0 or unspent ~= math.floor(unspent) then\n"
    "  return redis.error_reply('ERR give back: the amount must be a non-negative integer, not ' .. tostring(ARGV[2]))\n"
    "end\n" MNV_BUDGET_LOST_CHECK
    "local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')\n"
    "local back = unspent\n"
    "if held < back then back = held end\n"
    "if back > 0 then redis.call('INCRBY', KEYS[1], back) end\n"
    "redis.call('HDEL', KEYS[2], ARGV[1])\n"
    "return back\n";

#undef MNV_BUDGET_LOST_CHECK

BudgetLeases::BudgetLeases() : open_(kOpenScript), lease_(kLeaseScript), give_back_(kGiveBackScript) {}

bool BudgetLeases::make_keys(std::string_view campaign) {
  const int n = static_cast<int>(campaign.size());
  int a = std::snprintf(left_key_, sizeof left_key_, "{budget:%.*s}:left", n, campaign.data());
  int b = std::snprintf(leases_key_, sizeof leases_key_, "{budget:%.*s}:leases", n, campaign.data());
  int c = std::snprintf(lost_key_, sizeof lost_key_, "{budget:%.*s}:lost", n, campaign.data());
  if (a <= 0 || b <= 0 || c <= 0 || a >= static_cast<int>(sizeof left_key_) ||
      b >= static_cast<int>(sizeof leases_key_) || c >= static_cast<int>(sizeof lost_key_)) {
    std::snprintf(why_, sizeof why_, "campaign id '%.*s' is too long (at most %zu bytes)",
                  campaign.size() > 40 ? 40 : n, campaign.data(), sizeof left_key_ - 20);
    return false;
  }
  left_len_ = static_cast<std::uint8_t>(a);
  leases_len_ = static_cast<std::uint8_t>(b);
  lost_len_ = static_cast<std::uint8_t>(c);
  return true;
}

namespace {

// The two clients' ways of running a script and a command on a key.
Task<int> eval_on(Connection& c, Script& s, std::span<const std::string_view> keys,
                  std::span<const std::string_view> args, Reply* out) {
  co_return co_await s.eval(c, keys, args, out);
}
Task<int> eval_on(Cluster& c, Script& s, std::span<const std::string_view> keys,
                  std::span<const std::string_view> args, Reply* out) {
  co_return co_await c.eval(s, keys, args, out);
}
Task<int> call_on(Connection& c, std::string_view, std::span<const std::string_view> argv, Reply* out) {
  co_return co_await c.call(argv, out);
}
Task<int> call_on(Cluster& c, std::string_view key, std::span<const std::string_view> argv, Reply* out) {
  co_return co_await c.call(key, argv, out);
}

}  // namespace

template <typename Client>
Task<int> BudgetLeases::run(Script& s, Client& c, std::span<const std::string_view> args, std::int64_t* out) {
  const std::string_view keys[] = {{left_key_, left_len_}, {leases_key_, leases_len_}, {lost_key_, lost_len_}};
  Reply r;
  if (int e = co_await eval_on(c, s, keys, args, &r); e != 0) {
    std::snprintf(why_, sizeof why_, "%s", c.why());
    co_return e;
  }
  if (r.type() != Type::kInteger) {
    char msg[128] = "";
    std::size_t k = r.is_error() ? r.str().copy_to(msg, sizeof msg - 1) : 0;
    msg[k] = '\0';
    std::snprintf(why_, sizeof why_, "%s: %s", left_key_, r.is_error() ? msg : type_name(r.type()));
    co_return EPROTO;
  }
  if (r.integer() < 0) {
    std::snprintf(why_, sizeof why_,
                  "%s is gone: Redis lost this campaign's budget (restarted without persistence?) and %s marks it; "
                  "to bid on it again set %s to what is left of the budget, then DEL %s",
                  left_key_, lost_key_, left_key_, lost_key_);
    co_return ENODATA;
  }
  *out = r.integer();
  co_return 0;
}

template <typename Client>
Task<int> BudgetLeases::reset(Client& c, std::string_view campaign, std::int64_t amount) {
  if (!make_keys(campaign)) co_return EINVAL;
  Int n(amount);
  const std::string_view left_key(left_key_, left_len_);
  const std::string_view set[] = {"SET", left_key, n};
  const std::string_view del[] = {"DEL", {leases_key_, leases_len_}, {lost_key_, lost_len_}};
  Reply r;
  const std::span<const std::string_view> commands[] = {set, del};
  for (std::span<const std::string_view> argv : commands) {
    if (int e = co_await call_on(c, left_key, argv, &r); e != 0) {
      std::snprintf(why_, sizeof why_, "%s", c.why());
      co_return e;
    }
    if (r.is_error()) {
      std::snprintf(why_, sizeof why_, "%s: %s answered an error", left_key_, argv[0] == "SET" ? "SET" : "DEL");
      co_return EPROTO;
    }
  }
  co_return 0;
}

template <typename Client>
Task<int> BudgetLeases::open(Client& c, std::string_view campaign, std::string_view holder, std::int64_t amount,
                             bool* created) {
  if (!make_keys(campaign)) co_return EINVAL;
  Int n(amount);
  const std::string_view args[] = {holder, n, "open"};
  std::int64_t result = 0;
  if (int e = co_await run(open_, c, args, &result); e != 0) co_return e;
  *created = result == 1;
  co_return 0;
}

template <typename Client>
Task<int> BudgetLeases::check(Client& c, std::string_view campaign, std::string_view holder) {
  if (!make_keys(campaign)) co_return EINVAL;
  const std::string_view args[] = {holder, "0", "check"};
  std::int64_t result = 0;
  co_return co_await run(open_, c, args, &result);
}

template <typename Client>
Task<int> BudgetLeases::lease(Client& c, std::string_view campaign, std::string_view holder, std::int64_t want,
                              std::int64_t* granted) {
  if (!make_keys(campaign)) co_return EINVAL;
  Int n(want);
  const std::string_view args[] = {holder, n};
  co_return co_await run(lease_, c, args, granted);
}

template <typename Client>
Task<int> BudgetLeases::give_back(Client& c, std::string_view campaign, std::string_view holder,
                                  std::int64_t unspent, std::int64_t* returned) {
  if (!make_keys(campaign)) co_return EINVAL;
  Int n(unspent);
  const std::string_view args[] = {holder, n};
  co_return co_await run(give_back_, c, args, returned);
}

template <typename Client>
Task<int> BudgetLeases::left(Client& c, std::string_view campaign, std::int64_t* left) {
  if (!make_keys(campaign)) co_return EINVAL;
  Reply r;
  const std::string_view argv[] = {"GET", {left_key_, left_len_}};
  if (int e = co_await call_on(c, argv[1], argv, &r); e != 0) {
    std::snprintf(why_, sizeof why_, "%s", c.why());
    co_return e;
  }
  if (r.is_null()) {
    *left = 0;
    co_return 0;
  }
  char buf[24];
  std::size_t k = r.str().copy_to(buf, sizeof buf - 1);
  buf[k] = '\0';
  char* end = nullptr;
  *left = std::strtoll(buf, &end, 10);
  if (r.is_error() || k == 0 || *end != '\0') {
    std::snprintf(why_, sizeof why_, "%s does not hold an integer", left_key_);
    co_return EPROTO;
  }
  co_return 0;
}

// The two clients.
template Task<int> BudgetLeases::reset(Connection&, std::string_view, std::int64_t);
template Task<int> BudgetLeases::reset(Cluster&, std::string_view, std::int64_t);
template Task<int> BudgetLeases::open(Connection&, std::string_view, std::string_view, std::int64_t, bool*);
template Task<int> BudgetLeases::open(Cluster&, std::string_view, std::string_view, std::int64_t, bool*);
template Task<int> BudgetLeases::check(Connection&, std::string_view, std::string_view);
template Task<int> BudgetLeases::check(Cluster&, std::string_view, std::string_view);
template Task<int> BudgetLeases::lease(Connection&, std::string_view, std::string_view, std::int64_t, std::int64_t*);
template Task<int> BudgetLeases::lease(Cluster&, std::string_view, std::string_view, std::int64_t, std::int64_t*);
template Task<int> BudgetLeases::give_back(Connection&, std::string_view, std::string_view, std::int64_t,
                                           std::int64_t*);
template Task<int> BudgetLeases::give_back(Cluster&, std::string_view, std::string_view, std::int64_t, std::int64_t*);
template Task<int> BudgetLeases::left(Connection&, std::string_view, std::int64_t*);
template Task<int> BudgetLeases::left(Cluster&, std::string_view, std::int64_t*);

}  // namespace mnv::redis
