// redis/script.cc — EVALSHA with a SCRIPT LOAD fallback (script.h).
#include "redis/script.h"

#include <cerrno>

namespace mnv::redis {

Task<int> Script::load(Connection& c, Reply* out) {
  sha_len_ = 0;
  const std::string_view argv[] = {"SCRIPT", "LOAD", source_};
  if (int e = co_await c.call(std::span<const std::string_view>(argv), out); e != 0) co_return e;
  if (out->is_error()) co_return 0;  // (a syntax error in the script: the caller gets the reply)
  if (out->type() != Type::kBulkString || out->str().size() != sizeof sha_) co_return EPROTO;
  out->str().copy(0, sizeof sha_, sha_);
  sha_len_ = sizeof sha_;
  ++loads_;
  co_return 0;
}

Task<int> Script::eval(Connection& c, std::span<const std::string_view> keys, std::span<const std::string_view> args,
                       Reply* out, bool asking) {
  if (keys.size() + args.size() > kMaxArgs) co_return E2BIG;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (sha_len_ == 0) {
      if (int e = co_await load(c, out); e != 0) co_return e;
      if (sha_len_ == 0) co_return 0;  // the load's error reply
    }
    std::string_view argv[3 + kMaxArgs];
    Int nkeys(static_cast<std::int64_t>(keys.size()));
    std::size_t n = 0;
    argv[n++] = "EVALSHA";
    argv[n++] = sha();
    argv[n++] = nkeys;
    for (std::string_view k : keys) argv[n++] = k;
    for (std::string_view a : args) argv[n++] = a;
    if (asking) {  // ASKING and the EVALSHA, pipelined; ASKING's +OK is not the caller's
      static constexpr std::string_view kAsking[] = {"ASKING"};
      if (int e = co_await c.send(kAsking); e != 0) co_return e;
      if (int e = co_await c.send(std::span<const std::string_view>(argv, n)); e != 0) co_return e;
      if (int e = co_await c.receive(out); e != 0) co_return e;
      if (out->is_error()) {
        (void)co_await c.receive(out);
        co_return EPROTO;
      }
      if (int e = co_await c.receive(out); e != 0) co_return e;
    } else if (int e = co_await c.call(std::span<const std::string_view>(argv, n), out); e != 0) {
      co_return e;
    }
    if (!(out->is_error() && out->str().starts_with("NOSCRIPT"))) co_return 0;
    sha_len_ = 0;  // the server lost it: load it again, once
  }
  co_return 0;  // NOSCRIPT right after a load (the server is flushing scripts): the reply says so
}

}  // namespace mnv::redis
