// net/http/client.cc — the keep-alive HTTP/1.1 client connection (client.h).
#include "net/http/client.h"

#include <sys/uio.h>

#include <cerrno>
#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "net/io.h"
#include "runtime/clock.h"
#include "runtime/raise.h"

namespace mnv::http {
namespace {

// Waits until the socket's input grows (or ends): one fill() that brings bytes, however many
// waits it takes; or until the monotonic time `until` (0: no limit), which is not an error:
// co_await says false then.
class MoreInputOp : public IoOp<MoreInputOp> {
 public:
  MoreInputOp(Socket& s, std::int64_t until, std::source_location w) : IoOp(s, w), until_(until) {}
  R attempt() {
    if (until_ != 0 && monotonic_ns() >= until_) {
      expired_ = true;
      return R::kDone;
    }
    R r;
    if (more_input(*s_, &r)) return R::kDone;
    return r;
  }
  std::int64_t timeout_ns() const {
    if (until_ == 0) return 0;
    std::int64_t left = until_ - monotonic_ns();
    return left > 0 ? left : 1;
  }
  bool timeout_is_retry() const { return true; }
  bool await_resume() const noexcept { return !expired_; }

 private:
  std::int64_t until_;
  bool expired_ = false;
};

bool has_body_by_method(std::string_view method) { return method == "POST" || method == "PUT" || method == "PATCH"; }

}  // namespace

Client::Client(const ClientOptions& options) : opt_(options), parser_(options.limits) {}

void Client::note(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(note_, sizeof note_, fmt, ap);
  va_end(ap);
}

Task<> Client::connect(const sockaddr* addr, socklen_t len) {
  phase_ = Phase::kConnecting;
  note_[0] = '\0';
  s_.set_timeout_ns(opt_.connect_timeout_ns);
  co_await mnv::connect(s_, addr, len);
  // A write that waits for a server which stopped reading has the response deadline too.
  s_.set_timeout_ns(opt_.response_timeout_ns);
  phase_ = Phase::kIdle;
}

Task<> Client::send(const Request& r) {
  phase_ = Phase::kSending;
  note_[0] = '\0';
  if (closed_) {
    note("the server closed the connection after response %llu; no more requests can be sent",
         static_cast<unsigned long long>(received_));
    co_await raise(EPIPE);
    co_return;
  }
  if (outstanding() >= kMaxOutstanding) {
    note("%u requests are outstanding already (Client::kMaxOutstanding); receive() some first", kMaxOutstanding);
    co_await raise(EBUSY);
    co_return;
  }
  char cl[40];
  std::size_t cl_len = 0;
  if (!r.body.empty() || has_body_by_method(r.method)) {
    std::memcpy(cl, "Content-Length: ", 16);
    char* end = std::to_chars(cl + 16, cl + sizeof cl - 2, r.body.size()).ptr;
    end[0] = '\r';
    end[1] = '\n';
    cl_len = static_cast<std::size_t>(end + 2 - cl);
  }
  const std::string_view pieces[] = {r.method, " ", r.target, " HTTP/1.1\r\nHost: ", opt_.host, "\r\n", r.fields,
                                     std::string_view(cl, cl_len), "\r\n", r.body};
  std::size_t total = 0;
  for (std::string_view p : pieces) total += p.size();
  if (s_.takes(total)) {  // the common case: straight into the send ring, no op
    for (std::string_view p : pieces) {
      if (!p.empty()) s_.tx().write(p.data(), p.size());
    }
  } else {
    s_.set_timeout_ns(opt_.response_timeout_ns);
    for (std::string_view p : pieces) {
      if (!p.empty()) co_await write(s_, p.data(), p.size());
    }
  }
  std::uint64_t i = sent_++;
  std::uint64_t bit = std::uint64_t{1} << (i % 64);
  std::uint64_t& word = head_bits_[i % kMaxOutstanding / 64];
  word = r.method == "HEAD" ? (word | bit) : (word & ~bit);
  phase_ = Phase::kIdle;
}

Task<> Client::flush() {
  phase_ = Phase::kSending;
  note_[0] = '\0';
  s_.set_timeout_ns(opt_.response_timeout_ns);
  co_await mnv::flush(s_);
  phase_ = Phase::kIdle;
}

Task<Response> Client::receive(std::span<char> body) {
  Response out;
  co_await receive_until(0, &out, body);
  co_return out;
}

Task<bool> Client::receive_until(std::int64_t wake_at, Response* out, std::span<char> body) {
  const unsigned long long n = received_ + 1;  // this response's number on the connection
  if (!in_progress_) {
    note_[0] = '\0';
    if (outstanding() == 0) {
      note("receive() of response %llu with no request outstanding", n);
      co_await raise(EINVAL);
      co_return false;
    }
    if (closed_) {
      note("response %llu: the server closed the connection after response %llu (Connection: close); %u requests "
           "were not answered",
           n, n - 1, outstanding());
      co_await raise(ECONNABORTED);
      co_return false;
    }
    in_progress_ = true;
    cur_ = Response{};
    deadline_ = opt_.response_timeout_ns > 0 ? monotonic_ns() + opt_.response_timeout_ns : 0;
    in_body_ = false;
    parser_.reset();
    if (head_request(received_)) parser_.expect_no_body();
  }
  phase_ = in_body_ ? Phase::kBody : Phase::kHead;  // (a send() between calls changes phase_)
  Vectoring& rx = s_.rx();
  // The earlier of the response's deadline and wake_at (0: neither).
  const std::int64_t until = deadline_ == 0 ? wake_at : (wake_at == 0 || deadline_ < wake_at ? deadline_ : wake_at);

  // The head (any 1xx interim responses skipped).
  while (!in_body_) {
    iovec iov[2];
    ByteSpans in(iov, rx.data_iov(iov));
    HeadStatus st = parser_.parse_head(in, opt_.scratch);
    if (st == HeadStatus::kComplete) {
      const ResponseHead& h = parser_.head();
      cur_.status = h.status;
      cur_.keep_alive = h.keep_alive;
      rx.consume(parser_.head_size());
      if (h.status >= 100 && h.status < 200 && h.status != 101) {
        parser_.reset();
        if (head_request(received_)) parser_.expect_no_body();
        continue;
      }
      in_body_ = true;
      phase_ = Phase::kBody;
      break;
    }
    if (st == HeadStatus::kError) {
      in_progress_ = false;
      note("response %llu: malformed head: %s (at byte %zu of the head)", n, describe(parser_.error()),
           parser_.error_offset());
      co_await raise(EPROTO);
      co_return false;
    }
    if (st == HeadStatus::kNeedScratch) {
      in_progress_ = false;
      note("response %llu: its head (%zu bytes) straddles the receive ring's wrap and ClientOptions::scratch has only "
           "%zu bytes; give it at least Limits::max_head",
           n, parser_.scratch_needed(), opt_.scratch.size());
      co_await raise(EPROTO);
      co_return false;
    }
    if (s_.eof()) {
      in_progress_ = false;
      closed_ = true;
      if (in.empty()) {
        note("response %llu: the server closed the connection before answering (%u requests unanswered)", n,
             outstanding());
      } else {
        note("response %llu: the server closed the connection in the middle of the head (after %zu bytes)", n,
             in.size());
      }
      co_await raise(ECONNABORTED);
      co_return false;
    }
    if (rx.full() && !rx.lent()) {  // (a buffer lent by the poller is copied into rx for more)
      in_progress_ = false;
      note("response %llu: its head is larger than the receive ring (%zu bytes)", n, rx.capacity());
      co_await raise(EPROTO);
      co_return false;
    }
    if (!co_await MoreInputOp(s_, until, std::source_location::current())) {
      if (deadline_ != 0 && monotonic_ns() >= deadline_) {
        in_progress_ = false;
        note("response %llu: no complete head within %lld ms", n,
             static_cast<long long>(opt_.response_timeout_ns / 1'000'000));
        co_await raise(ETIMEDOUT);
      }
      co_return false;  // wake_at passed: the next call goes on from here
    }
  }

  // The body.
  while (!parser_.body_done()) {
    iovec iov[2];
    ByteSpans in(iov, rx.data_iov(iov));
    BodyStep st = parser_.parse_body(in);
    if (st.error == Error::kNone && st.consumed == 0 && !st.done && s_.eof()) st = parser_.finish();
    if (st.error != Error::kNone) {
      in_progress_ = false;
      if (st.error == Error::kTruncated) {
        closed_ = true;
        note("response %llu: the server closed the connection in the middle of the body (after %llu body bytes)", n,
             static_cast<unsigned long long>(cur_.body_size));
        co_await raise(ECONNABORTED);
      } else {
        note("response %llu: malformed body: %s", n, describe(st.error));
        co_await raise(EPROTO);
      }
      co_return false;
    }
    if (!st.data.empty()) {
      std::size_t room = body.size() > cur_.body_copied ? body.size() - cur_.body_copied : 0;
      std::size_t k = st.data.size() < room ? st.data.size() : room;
      if (k > 0) std::memcpy(body.data() + cur_.body_copied, st.data.data(), k);
      cur_.body_copied += k;
      cur_.body_size += st.data.size();
    }
    rx.consume(st.consumed);
    if (st.done) break;
    if (st.consumed > 0) continue;
    if (!co_await MoreInputOp(s_, until, std::source_location::current())) {
      if (deadline_ != 0 && monotonic_ns() >= deadline_) {
        in_progress_ = false;
        note("response %llu: body not complete within %lld ms (%llu bytes so far)", n,
             static_cast<long long>(opt_.response_timeout_ns / 1'000'000),
             static_cast<unsigned long long>(cur_.body_size));
        co_await raise(ETIMEDOUT);
      }
      co_return false;
    }
  }
  in_progress_ = false;
  ++received_;
  if (!cur_.keep_alive) closed_ = true;
  phase_ = Phase::kIdle;
  *out = cur_;
  co_return true;
}

const char* Client::explain(const mnv::Error& e, char* buf, std::size_t len) const {
  char cause[128];
  e.describe(cause, sizeof cause);
  if (note_[0] != '\0') {
    std::snprintf(buf, len, "%s [%s]", note_, cause);
    return buf;
  }
  const unsigned long long n = received_ + 1;
  switch (phase_) {
    case Phase::kConnecting:
      std::snprintf(buf, len, "connect to the server failed (deadline %lld ms): %s",
                    static_cast<long long>(opt_.connect_timeout_ns / 1'000'000), cause);
      break;
    case Phase::kSending:
      std::snprintf(buf, len, "sending request %llu failed: %s", static_cast<unsigned long long>(sent_ + 1), cause);
      break;
    case Phase::kHead:
    case Phase::kBody:
      if (e.code == ETIMEDOUT) {
        std::snprintf(buf, len, "response %llu: not complete within %lld ms (in its %s): %s", n,
                      static_cast<long long>(opt_.response_timeout_ns / 1'000'000),
                      phase_ == Phase::kHead ? "head" : "body", cause);
      } else {
        std::snprintf(buf, len, "response %llu: reading its %s failed: %s", n, phase_ == Phase::kHead ? "head" : "body",
                      cause);
      }
      break;
    case Phase::kIdle:
      std::snprintf(buf, len, "%s", cause);
      break;
  }
  return buf;
}

}  // namespace mnv::http
