// redis/budget_lease.cc — campaign budget leases (budget_lease.h).
#include "redis/budget_lease.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace mnv::redis {

const std::string_view BudgetLeases::kLeaseScript = R"lua(
local want = tonumber(ARGV[2])
if want == nil or want < 0 or want ~= math.floor(want) then
  return redis.error_reply('ERR lease: the amount must be a non-negative integer, not ' .. tostring(ARGV[2]))
end
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = want
if left < grant then grant = left end
if grant > 0 then
  redis.call('DECRBY', KEYS[1], grant)
  redis.call('HINCRBY', KEYS[2], ARGV[1], grant)
end
return grant
)lua";

const std::string_view BudgetLeases::kGiveBackScript = R"lua(
local unspent = tonumber(ARGV[2])
if unspent == nil or unspent < 0 or unspent ~= math.floor(unspent) then
  return redis.error_reply('ERR give back: the amount must be a non-negative integer, not ' .. tostring(ARGV[2]))
end
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local back = unspent
if held < back then back = held end
if back > 0 then redis.call('INCRBY', KEYS[1], back) end
redis.call('HDEL', KEYS[2], ARGV[1])
return back
)lua";

BudgetLeases::BudgetLeases() : lease_(kLeaseScript), give_back_(kGiveBackScript) {}

bool BudgetLeases::make_keys(std::string_view campaign) {
  int a = std::snprintf(left_key_, sizeof left_key_, "{budget:%.*s}:left", static_cast<int>(campaign.size()),
                        campaign.data());
  int b = std::snprintf(leases_key_, sizeof leases_key_, "{budget:%.*s}:leases", static_cast<int>(campaign.size()),
                        campaign.data());
  if (a <= 0 || b <= 0 || a >= static_cast<int>(sizeof left_key_) || b >= static_cast<int>(sizeof leases_key_)) {
    std::snprintf(why_, sizeof why_, "campaign id '%.*s' is too long (at most %zu bytes)",
                  static_cast<int>(campaign.size() > 40 ? 40 : campaign.size()), campaign.data(),
                  sizeof left_key_ - 20);
    return false;
  }
  left_len_ = static_cast<std::uint8_t>(a);
  leases_len_ = static_cast<std::uint8_t>(b);
  return true;
}

Task<int> BudgetLeases::run(Script& s, Connection& c, std::string_view holder, std::int64_t amount,
                            std::int64_t* out) {
  Int n(amount);
  const std::string_view keys[] = {{left_key_, left_len_}, {leases_key_, leases_len_}};
  const std::string_view args[] = {holder, n};
  Reply r;
  if (int e = co_await s.eval(c, keys, args, &r); e != 0) {
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
  *out = r.integer();
  co_return 0;
}

Task<int> BudgetLeases::reset(Connection& c, std::string_view campaign, std::int64_t amount) {
  if (!make_keys(campaign)) co_return EINVAL;
  Int n(amount);
  const std::string_view set[] = {"SET", {left_key_, left_len_}, n};
  const std::string_view del[] = {"DEL", {leases_key_, leases_len_}};
  if (int e = co_await c.send(set); e != 0) co_return e;
  if (int e = co_await c.send(del); e != 0) co_return e;
  Reply r;
  int e = co_await c.receive(&r);
  bool bad = e == 0 && r.is_error();
  int e2 = co_await c.receive(&r);
  if (e != 0 || e2 != 0) {
    std::snprintf(why_, sizeof why_, "%s", c.why());
    co_return e != 0 ? e : e2;
  }
  if (bad || r.is_error()) {
    std::snprintf(why_, sizeof why_, "%s: SET or DEL answered an error", left_key_);
    co_return EPROTO;
  }
  co_return 0;
}

Task<int> BudgetLeases::lease(Connection& c, std::string_view campaign, std::string_view holder, std::int64_t want,
                              std::int64_t* granted) {
  if (!make_keys(campaign)) co_return EINVAL;
  co_return co_await run(lease_, c, holder, want, granted);
}

Task<int> BudgetLeases::give_back(Connection& c, std::string_view campaign, std::string_view holder,
                                  std::int64_t unspent, std::int64_t* returned) {
  if (!make_keys(campaign)) co_return EINVAL;
  co_return co_await run(give_back_, c, holder, unspent, returned);
}

Task<int> BudgetLeases::left(Connection& c, std::string_view campaign, std::int64_t* left) {
  if (!make_keys(campaign)) co_return EINVAL;
  Reply r;
  if (int e = co_await c.call_args(&r, "GET", std::string_view(left_key_, left_len_)); e != 0) {
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

}  // namespace mnv::redis
