// redis/connection.cc — the pipelined Redis connection (connection.h).
#include "redis/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "redis/quiet_ops.h"
#include "runtime/clock.h"

namespace mnv::redis {
namespace {

// "127.0.0.1:6379" for messages.
const char* address_text(const sockaddr_storage& a, char* buf, std::size_t len) {
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (a.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(a);
    ::inet_ntop(AF_INET, &in.sin_addr, host, sizeof host);
    port = ntohs(in.sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(a);
    ::inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof host);
    port = ntohs(in6.sin6_port);
  }
  std::snprintf(buf, len, "%s:%u", host, port);
  return buf;
}

long long ms(std::int64_t ns) { return static_cast<long long>(ns / 1'000'000); }

}  // namespace

Connection::Connection(const ConnectionOptions& options) : opt_(options), parser_(options.limits) {
  if (opt_.max_in_flight == 0 || opt_.max_in_flight > kMaxInFlight) opt_.max_in_flight = kMaxInFlight;
  if (opt_.backoff_min_ns <= 0) opt_.backoff_min_ns = 1'000'000;
  if (opt_.backoff_max_ns < opt_.backoff_min_ns) opt_.backoff_max_ns = opt_.backoff_min_ns;
  backoff_ns_ = opt_.backoff_min_ns;
}

void Connection::note(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(why_, sizeof why_, fmt, ap);
  va_end(ap);
}

void Connection::set_address(const sockaddr* addr, socklen_t len) {
  MNV_ASSERT(len <= sizeof addr_);
  if (sock_) drop(ECONNABORTED);
  std::memcpy(&addr_, addr, len);
  addr_len_ = len;
  next_connect_ = 0;
  backoff_ns_ = opt_.backoff_min_ns;
}

void Connection::release_reply() {
  if (reply_size_ != 0) {
    if (sock_) sock_->rx().consume(reply_size_);
    reply_size_ = 0;
    parser_.reset();
  }
}

void Connection::drop(int code) {
  if (sock_) {
    sock_.reset();  // closes the fd (and cancels what the poller still has of it)
    ++stats_.drops;
  }
  reply_size_ = 0;
  parser_.reset();
  lost_until_ = sent_;
  lost_error_ = code;
}

int Connection::fail(int code) {
  drop(code);
  return code;
}

Task<int> Connection::connect() {
  char where[64];
  const std::int64_t now = monotonic_ns();
  if (addr_len_ == 0) {
    note("no address: call set_address() first");
    co_return EDESTADDRREQ;
  }
  if (now < next_connect_) {
    ++stats_.refused;
    note("%s: not connected, next attempt in %lld ms (back-off after: %s)", address_text(addr_, where, sizeof where),
         ms(next_connect_ - now), std::strerror(connect_error_));
    co_return connect_error_;
  }
  sock_.emplace();
  int e = co_await QuietConnectOp(*sock_, reinterpret_cast<const sockaddr*>(&addr_), addr_len_,
                                  now + opt_.connect_timeout_ns);
  if (e != 0) {
    sock_.reset();
    ++stats_.connect_failures;
    connect_error_ = e;
    next_connect_ = monotonic_ns() + backoff_ns_;
    note("connect to %s failed: %s (next attempt in %lld ms)", address_text(addr_, where, sizeof where),
         std::strerror(e), ms(backoff_ns_));
    backoff_ns_ = backoff_ns_ * 2 > opt_.backoff_max_ns ? opt_.backoff_max_ns : backoff_ns_ * 2;
    co_return e;
  }
  ++stats_.connects;
  backoff_ns_ = opt_.backoff_min_ns;
  co_return 0;
}

Task<int> Connection::send(std::span<const std::string_view> args) {
  if (in_flight() >= opt_.max_in_flight) {
    ++stats_.refused;
    note("command %llu refused: %u commands await replies (ConnectionOptions::max_in_flight); receive() some first",
         static_cast<unsigned long long>(sent_ + 1), opt_.max_in_flight);
    co_return EBUSY;
  }
  if (!sock_) {
    if (int e = co_await connect(); e != 0) co_return e;
  }
  Socket& s = *sock_;
  if (!s.tx().ensure()) {
    note("command %llu: no room for the send ring in the micro-heap", static_cast<unsigned long long>(sent_ + 1));
    co_return ENOMEM;
  }
  const std::int64_t deadline = monotonic_ns() + opt_.call_timeout_ns;
  CommandWriter w(args);
  while (!w.write(s.tx())) {  // larger than the ring's room: send some, then write on
    int e = co_await QuietTransferOp(s, QuietTransferOp::Want::kSpace, 1, deadline);
    if (e != 0) {
      note("command %llu: sending it failed (%s); the connection was dropped",
           static_cast<unsigned long long>(sent_ + 1), std::strerror(e));
      co_return fail(e);  // half a command went out: the connection cannot be used any more
    }
  }
  deadlines_[sent_ % kMaxInFlight] = deadline;
  ++sent_;
  co_return 0;
}

Task<int> Connection::flush() {
  if (!sock_ || sock_->tx().empty()) co_return 0;
  const std::int64_t deadline = in_flight() > 0 ? deadlines_[received_ % kMaxInFlight]
                                                : monotonic_ns() + opt_.call_timeout_ns;
  int e = co_await QuietTransferOp(*sock_, QuietTransferOp::Want::kSpace, sock_->tx().capacity(), deadline);
  if (e != 0) {
    note("flush failed (%s); the connection was dropped", std::strerror(e));
    co_return fail(e);
  }
  co_return 0;
}

Task<int> Connection::receive(Reply* out) {
  release_reply();
  const unsigned long long n = received_ + 1;  // the command's number on this connection
  if (in_flight() == 0) {
    note("receive() with no command awaiting a reply");
    co_return EINVAL;
  }
  if (received_ < lost_until_) {
    ++received_;
    note("command %llu: lost with the connection (dropped: %s)", n, std::strerror(lost_error_));
    co_return ECONNABORTED;
  }
  MNV_ASSERT(sock_.has_value());
  Socket& s = *sock_;
  const std::int64_t deadline = deadlines_[received_ % kMaxInFlight];
  for (;;) {
    iovec iov[2];
    ByteSpans in(iov, s.rx().data_iov(iov));
    ReplyParser::Status st = parser_.parse(in);
    if (st == ReplyParser::Status::kComplete) {
      Reply r = parser_.reply(in);
      if (r.type() == Type::kPush) {  // out of band (RESP3): no command's reply
        s.rx().consume(parser_.size());
        parser_.reset();
        continue;
      }
      reply_size_ = parser_.size();
      ++received_;
      *out = r;
      co_return 0;
    }
    if (st == ReplyParser::Status::kError) {
      ++received_;
      note("command %llu: the reply is not RESP: %s (at byte %zu); the connection was dropped", n,
           describe(parser_.error()), parser_.error_offset());
      co_return fail(EPROTO);
    }
    if (s.rx().full() && !s.rx().lent()) {
      ++received_;
      note("command %llu: the reply is larger than the receive ring (%zu bytes); the connection was dropped", n,
           s.rx().capacity());
      co_return fail(EMSGSIZE);
    }
    if (s.eof()) {
      ++received_;
      note("command %llu: the server closed the connection (%u replies outstanding)", n, in_flight() + 1);
      co_return fail(ECONNRESET);
    }
    int e = co_await QuietTransferOp(s, QuietTransferOp::Want::kInput, 0, deadline);
    if (e == ETIMEDOUT) {
      ++received_;
      note("command %llu: no reply within %lld ms; the connection was dropped (%u more in flight lost)", n,
           ms(opt_.call_timeout_ns), in_flight());
      co_return fail(ETIMEDOUT);
    }
    if (e != 0) {
      ++received_;
      note("command %llu: the connection failed: %s", n, std::strerror(e));
      co_return fail(e);
    }
  }
}

Task<int> Connection::call(std::span<const std::string_view> args, Reply* out) {
  if (int e = co_await send(args); e != 0) co_return e;
  co_return co_await receive(out);
}

}  // namespace mnv::redis
