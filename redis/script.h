// redis/script.h — a Lua script run with EVALSHA, loaded with SCRIPT LOAD when the server lacks it.
//
// A script is an atomic operation on the server (a budget lease: grant at most what is left, in
// one step). Sending its SHA1 instead of its source keeps each call small; the server answers
// NOSCRIPT when its script cache does not have it (a restart, a failover, SCRIPT FLUSH), and the
// script is then loaded and the call made once more, so callers never see NOSCRIPT. The SHA1 is
// the one the server reports for SCRIPT LOAD (no hashing here); the first eval() loads it.
//
//   static constexpr std::string_view kLease = "local left = ...";
//   redis::Script lease(kLease);                       // the source: the caller's, kept valid
//   const std::string_view keys[] = {key}, args[] = {redis::Int(want)};
//   int e = co_await lease.eval(conn, keys, args, &reply);
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "redis/connection.h"

namespace mnv::redis {

class Script {
 public:
  static constexpr std::size_t kMaxArgs = 16;  // keys and arguments together

  explicit Script(std::string_view source) : source_(source) {}

  // EVALSHA with `keys` and `args`; 0 with *out (the script's reply, maybe an error reply), or an
  // errno as Connection::call() returns them (E2BIG: more than kMaxArgs keys and arguments;
  // EPROTO: SCRIPT LOAD did not answer with a SHA1).
  // `asking`: ASKING goes before the EVALSHA (Redis Cluster's ASK redirection, cluster.h).
  Task<int> eval(Connection& c, std::span<const std::string_view> keys, std::span<const std::string_view> args,
                 Reply* out, bool asking = false);

  // Times the script was loaded (the first call, then after each NOSCRIPT).
  std::uint64_t loads() const { return loads_; }
  std::string_view sha() const { return {sha_, sha_len_}; }

 private:
  Task<int> load(Connection& c, Reply* out);

  std::string_view source_;
  char sha_[40];
  std::uint8_t sha_len_ = 0;
  std::uint64_t loads_ = 0;
};

}  // namespace mnv::redis
