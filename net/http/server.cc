#include "net/http/server.h"

#include <cerrno>
#include <cstring>
#include <ctime>

#include "mem/heap.h"
#include "net/http/date.h"
#include "net/http/response_head.h"
#include "net/http/status.h"
#include "net/io.h"
#include "runtime/clock.h"
#include "runtime/raise.h"

namespace mnv::http {

namespace {

thread_local HttpDate t_date;

// The start of the last response head formatted on this thread (shard): status line, Server,
// Date and the handler's fields, formatted (and the fields checked) again only when one of them
// changes (fields are compared by content) or the second does: a handler that answers with the
// same status and fields every time gets its head's start in one copy.
struct HeadStart {
  static constexpr std::size_t kMaxFields = 4;
  static constexpr std::size_t kMaxFieldBytes = 192;
  int status = 0;
  std::time_t second = -1;
  std::string_view server;
  std::uint8_t nfields = 0;
  std::uint16_t field_len[2 * kMaxFields] = {};  // name, value, name, value...
  char fields[kMaxFieldBytes];                    // their bytes, one after the other
  std::size_t size = 0;
  char buf[160 + kMaxFieldBytes + 4 * kMaxFields];
};
thread_local HeadStart t_head_start;

thread_local std::uint64_t t_requests = 0;

// Waits until more input arrives in the receive ring (true) or the input ends (false). Unlike
// readable(), it waits even when the ring already holds bytes (an incomplete head or body).
class FillOp : public IoOp<FillOp> {
 public:
  FillOp(Socket& s, Where w) : IoOp(s, w) {}
  R attempt() {
    R r = R::kDone;
    if (more_input(*s_, &r)) {
      grew_ = true;
      return R::kDone;
    }
    return r;
  }
  bool await_resume() const noexcept { return grew_; }

 private:
  bool grew_ = false;
};

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

std::int64_t remaining(std::int64_t deadline) {
  std::int64_t left = deadline - monotonic_ns();
  return left > 0 ? left : 1;
}

void split_target(std::string_view target, std::string_view* path, std::string_view* query) {
  if (!target.empty() && target[0] != '/') {  // absolute-form: the path follows the authority
    std::size_t scheme = target.find("://");
    std::size_t slash = scheme == std::string_view::npos ? std::string_view::npos : target.find('/', scheme + 3);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  std::size_t q = target.find('?');
  *path = target.substr(0, q);
  *query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
}

}  // namespace

std::uint64_t requests_served() { return t_requests; }

// One connection's state, in its micro-thread's frame.
class Connection {
 public:
  Connection(Accepted& conn, const Site& site) : conn_(conn), site_(site), s_(default_socket()), parser_(site.options.limits) {}

  Task<> run();

  // ---- used by Request and Response ----
  Task<std::string_view> body_piece(Request& req);
  // The response head straight into the send ring when it fits there now (no frame, nothing
  // waits: the keep-alive hot path); else write_head() formats it into a buffer and waits.
  bool try_head(Response& res, bool chunked, std::uint64_t length);
  Task<> write_head(Response& res, bool chunked, std::uint64_t length);
  // Bytes into the send ring: try_put() when they fit now, else put() waits for room.
  bool try_put(std::string_view bytes) { return try_write(s_, bytes.data(), bytes.size()); }
  // Bytes that outlive the connection, queued by pointer (Socket::add_static()); false: put them.
  bool add_static(std::string_view bytes) { return s_.add_static(bytes.data(), bytes.size()); }
  Task<> put(std::string_view bytes) {
    s_.set_timeout_ns(site_.options.send_timeout_ns);
    if (!try_write(s_, bytes.data(), bytes.size())) co_await write(s_, bytes.data(), bytes.size());
  }
  bool head_only() const { return parser_.head().method == Method::kHead; }
  bool response_started() const { return res_ != nullptr && res_->started(); }
  bool close_after() const { return !keep_alive_; }

  static Finally on_error(Connection* c);

 private:
  HeadStatus parse_buffered();
  bool carry_head();
  void drop_head_buffer();
  Task<bool> read_head();
  Task<bool> serve_one();
  bool answer_fault();
  Task<> answer_error(int status, std::string_view text);
  Task<> answer_simple(Response& res, int status, std::uint32_t allow, std::string_view body);
  Task<> linger_close();
  std::size_t format_head(char* buf, std::size_t cap, const Response& res, bool chunked, std::uint64_t length);
  static std::string_view head_start(const Response& res, std::string_view server);

  Accepted& conn_;
  const Site& site_;
  Socket& s_;
  RequestParser parser_;
  char* scratch_ = nullptr;  // micro-heap, for a head straddling the ring's wrap
  std::size_t scratch_size_ = 0;
  // A head larger than the receive ring (up to max_head): its first bytes, carried out of the
  // ring as it fills (micro-heap, max_head bytes, only while such a request is served); the
  // complete head is then copied here after them and parsed in place.
  char* head_buf_ = nullptr;
  std::size_t carried_ = 0;
  std::size_t off_ = 0;       // bytes of the current request (head + body read) in rx
  std::int64_t body_deadline_ = 0;
  bool sent_continue_ = false;
  bool keep_alive_ = true;
  Response* res_ = nullptr;
};

// ---- the head ---------------------------------------------------------------------------------

// Reads one request head: true when parser_ holds it (or failed: parser_.error()), false when the
// connection should end quietly (input ended).
HeadStatus Connection::parse_buffered() {
  iovec iov[2] = {};  // (GCC cannot see that data_iov() fills the second when it says 2)
  int n = s_.rx().data_iov(iov);
  if (carried_ == 0) return parser_.parse_head(ByteSpans(iov, n), std::span<char>(scratch_, scratch_size_));
  // The carried bytes, then the ring's first piece (carry_head() moves it out too if the head
  // goes on past it); a complete head is copied together in head_buf_.
  std::string_view ring = n > 0 ? std::string_view(static_cast<const char*>(iov[0].iov_base), iov[0].iov_len)
                                : std::string_view();
  return parser_.parse_head(ByteSpans(std::string_view(head_buf_, carried_), ring),
                            std::span<char>(head_buf_, site_.options.limits.max_head));
}

// The head is incomplete over every byte parse_buffered() saw, so those are all head bytes: the
// ring's first piece moves into head_buf_ (allocated on first use), making room. False when it
// is full (max_head bytes) or the heap is.
bool Connection::carry_head() {
  std::size_t cap = site_.options.limits.max_head;
  iovec iov[2];
  if (s_.rx().data_iov(iov) == 0) return true;
  if (carried_ + iov[0].iov_len > cap) return false;
  if (head_buf_ == nullptr) {
    head_buf_ = static_cast<char*>(this_process().heap().allocate(cap));
    if (head_buf_ == nullptr) return false;
  }
  std::memcpy(head_buf_ + carried_, iov[0].iov_base, iov[0].iov_len);
  carried_ += iov[0].iov_len;
  s_.rx().consume(iov[0].iov_len);
  return true;
}

void Connection::drop_head_buffer() {
  if (head_buf_ != nullptr) Heap::owner(head_buf_)->free(head_buf_);
  head_buf_ = nullptr;
  carried_ = 0;
}

// After parse_buffered() found the buffered head incomplete (or straddling the ring's wrap).
Task<bool> Connection::read_head() {
  std::int64_t deadline = monotonic_ns() + site_.options.header_timeout_ns;
  for (;;) {
    HeadStatus st = parse_buffered();
    if (st == HeadStatus::kNeedScratch) {
      if (scratch_ != nullptr) Heap::owner(scratch_)->free(scratch_);
      scratch_size_ = parser_.scratch_needed();
      scratch_ = static_cast<char*>(this_process().heap().allocate(scratch_size_));
      if (scratch_ == nullptr) {
        scratch_size_ = 0;
        co_await raise(ENOMEM);
      }
      continue;
    }
    if (st != HeadStatus::kIncomplete) co_return true;
    // A head larger than the receive ring (a lent one has no free space: the fill ends the loan):
    // its bytes so far move out of the ring, up to max_head.
    if (carried_ > 0 || (s_.rx().full() && !s_.rx().lent())) {
      if (!carry_head()) {
        co_await answer_error(431, "request head larger than max_head or the connection's heap");
        co_return false;
      }
      if (!s_.rx().empty()) continue;  // (the ring's second piece)
    }
    s_.set_timeout_ns(remaining(deadline));
    FillOp more(s_, Where::current());  // (named: GCC mishandles co_await on temporaries in conditions)
    if (!co_await more) co_return false;  // ended mid-head: just close
  }
}

// ---- the body ---------------------------------------------------------------------------------

Task<std::string_view> Connection::body_piece(Request& req) {
  const ServerOptions& o = site_.options;
  for (;;) {
    if (parser_.body_done() || req.body_error_ != 0) co_return std::string_view();
    iovec iov[2];
    ByteSpans in(iov, s_.rx().data_iov(iov));
    BodyStep st = parser_.parse_body(in.advanced(off_));
    if (st.error != Error::kNone) {
      req.body_error_ = status_of(st.error);
      co_return std::string_view();
    }
    off_ += st.consumed;
    if (!st.data.empty() || st.done) co_return st.data;
    // More input is needed.
    if (off_ > 0 && (s_.rx().lent() || s_.rx().space() < 512)) {  // make room: what was read of this request goes
      s_.rx().consume(off_);
      off_ = 0;
    }
    if (parser_.head().expect_continue && !sent_continue_ && parser_.head().version_minor == 1) {
      sent_continue_ = true;
      co_await put(kContinue);
      co_await flush(s_);
    }
    if (body_deadline_ == 0) body_deadline_ = monotonic_ns() + o.body_timeout_ns;
    s_.set_timeout_ns(remaining(body_deadline_));
    FillOp more(s_, Where::current());
    if (!co_await more) {
      req.body_error_ = 400;  // the input ended inside the body
      co_return std::string_view();
    }
  }
}

Task<std::string_view> Request::read_some() { return conn_->body_piece(*this); }

Task<std::size_t> Request::read_all(char* buf, std::size_t cap) {
  std::size_t n = 0;
  for (;;) {
    std::string_view piece = co_await read_some();
    if (piece.empty()) break;
    if (n <= cap) {
      std::size_t k = piece.size() <= cap - n ? piece.size() : cap - n;
      std::memcpy(buf + n, piece.data(), k);
      n += piece.size() <= cap - n ? piece.size() : cap - n + 1;
    }
  }
  co_return n;
}

// ---- responses --------------------------------------------------------------------------------

bool Response::header(std::string_view name, std::string_view value) {
  if (nfields_ == kMaxHeaders) return false;
  fields_[nfields_++] = Field{name, value};
  return true;
}

std::size_t Connection::format_head(char* buf, std::size_t cap, const Response& res, bool chunked,
                                    std::uint64_t length) {
  ResponseHeadWriter w(buf, cap);
  std::string_view start = head_start(res, site_.options.server_name);
  if (!start.empty()) {
    w.prebuilt(start);
  } else {  // (a head start the cache does not take: the writer says what is wrong)
    w.status(res.status_);
    w.server(site_.options.server_name);
    w.date(t_date);
    for (std::size_t i = 0; i < res.nfields_; ++i) w.header(res.fields_[i].name, res.fields_[i].value);
  }
  bool no_body = res.status_ == 204 || res.status_ == 304 || (res.status_ >= 100 && res.status_ < 200);
  if (chunked) {
    w.chunked();
  } else if (!no_body) {
    w.content_length(length);
  }
  if (!keep_alive_) {
    w.connection_close();
  } else if (parser_.head().version_minor == 0) {
    w.connection_keep_alive();
  }
  return w.end();
}

// Empty when the start does not fit the cache (too many or too long fields) or is invalid.
std::string_view Connection::head_start(const Response& res, std::string_view server) {
  HeadStart& h = t_head_start;
  bool same = h.status == res.status_ && h.second == t_date.seconds() && h.server.data() == server.data() &&
              h.server.size() == server.size() && h.nfields == res.nfields_;
  const char* f = h.fields;
  for (std::size_t i = 0; same && i < res.nfields_; ++i) {
    const Response::Field& r = res.fields_[i];
    std::size_t n = h.field_len[2 * i], v = h.field_len[2 * i + 1];
    same = r.name.size() == n && r.value.size() == v && std::memcmp(f, r.name.data(), n) == 0 &&
           (v == 0 || std::memcmp(f + n, r.value.data(), v) == 0);
    f += n + v;
  }
  if (same) return std::string_view(h.buf, h.size);
  // Formatted again (and the key kept) when the fields fit the cache.
  h.status = 0;
  h.size = 0;
  if (res.nfields_ > HeadStart::kMaxFields) return {};
  std::size_t total = 0;
  for (std::size_t i = 0; i < res.nfields_; ++i) total += res.fields_[i].name.size() + res.fields_[i].value.size();
  if (total > HeadStart::kMaxFieldBytes) return {};
  ResponseHeadWriter w(h.buf, sizeof h.buf);
  w.status(res.status_);
  w.server(server);
  w.date(t_date);
  char* to = h.fields;
  for (std::size_t i = 0; i < res.nfields_; ++i) {
    const Response::Field& r = res.fields_[i];
    w.header(r.name, r.value);
    h.field_len[2 * i] = static_cast<std::uint16_t>(r.name.size());
    h.field_len[2 * i + 1] = static_cast<std::uint16_t>(r.value.size());
    if (!r.name.empty()) std::memcpy(to, r.name.data(), r.name.size());
    if (!r.value.empty()) std::memcpy(to + r.name.size(), r.value.data(), r.value.size());
    to += r.name.size() + r.value.size();
  }
  if (w.failed()) return {};
  h.status = res.status_;
  h.second = t_date.seconds();
  h.server = server;
  h.nfields = res.nfields_;
  h.size = w.size();
  return std::string_view(h.buf, h.size);
}

bool Connection::try_head(Response& res, bool chunked, std::uint64_t length) {
  if (conn_.draining()) keep_alive_ = false;
  t_date.refresh();
  // Straight into the send ring when its free space is contiguous enough.
  if (s_.tx().ensure() && s_.error() == 0 && !s_.hung_up()) {
    iovec sp[2];
    if (s_.tx().space_iov(sp) > 0) {
      std::size_t n = format_head(static_cast<char*>(sp[0].iov_base), sp[0].iov_len, res, chunked, length);
      if (n > 0) {
        s_.tx().commit(n);
        return true;
      }
    }
  }
  return false;
}

// After try_head(): through a buffer.
Task<> Connection::write_head(Response& res, bool chunked, std::uint64_t length) {
  char buf[2048];
  std::size_t n = format_head(buf, sizeof buf, res, chunked, length);
  if (n == 0) {  // an invalid field (CR/LF in a value) or a head over 2 KiB: the handler's bug
    keep_alive_ = false;
    Response plain;
    plain.status_ = 500;
    n = format_head(buf, sizeof buf, plain, false, 0);
    res.state_ = Response::State::kDone;
  }
  co_await put(std::string_view(buf, n));
}

Task<> Response::send(std::string_view body) {
  if (state_ != State::kNone) co_return;
  if (!conn_->try_head(*this, false, body.size())) co_await conn_->write_head(*this, false, body.size());
  bool done = state_ == State::kDone;  // the head failed and became a 500
  state_ = State::kDone;
  if (!done && !conn_->head_only() && !body.empty() && !conn_->try_put(body)) co_await conn_->put(body);
}

Task<> Response::send_static(std::string_view body) {
  if (state_ != State::kNone) co_return;
  if (!conn_->try_head(*this, false, body.size())) co_await conn_->write_head(*this, false, body.size());
  bool done = state_ == State::kDone;  // the head failed and became a 500
  state_ = State::kDone;
  if (!done && !conn_->head_only() && !body.empty() && !conn_->add_static(body) && !conn_->try_put(body)) {
    co_await conn_->put(body);
  }
}

Task<> Response::begin_chunked() {
  if (state_ != State::kNone) co_return;
  if (!conn_->try_head(*this, true, 0)) co_await conn_->write_head(*this, true, 0);
  state_ = state_ == State::kDone ? State::kDone : State::kChunked;
}

Task<> Response::chunk(std::string_view data) {
  if (state_ != State::kChunked || data.empty() || conn_->head_only()) co_return;
  char size[24];
  int n = 0;
  char digits[16];
  int d = 0;
  for (std::size_t v = data.size(); v != 0; v >>= 4) digits[d++] = "0123456789abcdef"[v & 15];
  while (d > 0) size[n++] = digits[--d];
  size[n++] = '\r';
  size[n++] = '\n';
  if (!conn_->try_put(std::string_view(size, n))) co_await conn_->put(std::string_view(size, n));
  if (!conn_->try_put(data)) co_await conn_->put(data);
  if (!conn_->try_put("\r\n")) co_await conn_->put("\r\n");
}

Task<> Response::end_chunked() {
  if (state_ != State::kChunked) co_return;
  state_ = State::kDone;
  if (!conn_->head_only() && !conn_->try_put("0\r\n\r\n")) co_await conn_->put("0\r\n\r\n");
}

// ---- errors and the loop ----------------------------------------------------------------------

Task<> Connection::answer_simple(Response& res, int status, std::uint32_t allow, std::string_view body) {
  res.conn_ = this;
  res.status_ = status;
  char list[128];
  if (allow != 0) res.header("Allow", std::string_view(list, Router::allow_list(allow, list)));
  if (!body.empty()) res.header("Content-Type", "text/plain");
  co_await res.send(body);
}

Task<> Connection::answer_error(int status, std::string_view text) {
  keep_alive_ = false;
  char body[160];
  std::size_t n = text.size() < sizeof body - 1 ? text.size() : sizeof body - 1;
  std::memcpy(body, text.data(), n);
  body[n++] = '\n';
  Response res;
  co_await answer_simple(res, status, 0, std::string_view(body, n));
  co_await linger_close();
}

// Ends the output, then reads and drops what the client still sends (for up to a second), so the
// close does not reset the connection before the client has read the answer.
Task<> Connection::linger_close() {
  co_await tx_close(s_);
  s_.set_timeout_ns(1'000'000'000);
  s_.rx().consume(s_.rx().size());
  for (;;) {
    FillOp more(s_, Where::current());
    if (!co_await more) break;
    s_.rx().consume(s_.rx().size());
  }
}

// Traps and ENOMEM in a handler: a 500 when nothing of its response was buffered, then the end
// of the connection. Resets, broken pipes and timeouts end it quietly.
// (Its buffers live here, not in on_error's frame, which every connection holds while it lives.)
bool Connection::answer_fault() {
  if (res_ == nullptr || res_->started()) return false;
  keep_alive_ = false;
  res_->state_ = Response::State::kDone;
  char buf[512];
  Response plain;
  plain.status_ = 500;
  std::size_t n = format_head(buf, sizeof buf, plain, false, 0);
  return n > 0 && try_write(s_, buf, n);
}

Finally Connection::on_error(Connection* c) {
  int code = error().code;
  if (code == EFAULT || code == ENOMEM) {
    this_process().note_death(error());
    if (c->answer_fault()) co_await tx_close(c->s_);
  }
  co_return;
}

// The connection's loop. An idle connection waits here, in this small frame (with on_error's and
// serve()'s): a request's state lives in serve_one()'s frame only while it is served, so an idle
// keep-alive connection fits in one page of its micro-heap once its rings are given back.
Task<> Connection::run() {
  co_await finally(on_error(this));
  for (;;) {
    parser_.reset();
    drop_head_buffer();
    off_ = 0;
    body_deadline_ = 0;
    sent_continue_ = false;
    if (s_.rx().empty()) {
      if (conn_.draining()) break;
      s_.set_timeout_ns(site_.options.keepalive_timeout_ns);  // readable() flushes what is pending first
      if (!co_await readable(s_)) break;
    }
    HeadStatus st = parse_buffered();
    if (st == HeadStatus::kIncomplete || st == HeadStatus::kNeedScratch) {
      if (!co_await read_head()) break;
    }
    if (parser_.error() != Error::kNone) {
      if (const HttpMetrics* m = site_.metrics) Kernel::current()->metrics().add(m->bad_request(parser_.error_status()));
      co_await answer_error(parser_.error_status(), describe(parser_.error()));
      break;
    }
    if (!co_await serve_one()) break;
  }
  co_await flush(s_);
  drop_head_buffer();
  if (scratch_ != nullptr) Heap::owner(scratch_)->free(scratch_);
}

// One request whose head parser_ holds: routed, answered, its unread body dropped. False when the
// connection ends after it.
Task<bool> Connection::serve_one() {
  const Router& router = site_.router;
  const RequestHead& h = parser_.head();
  keep_alive_ = h.keep_alive && !conn_.draining();
  off_ = parser_.head_size() - carried_;  // (a carried head's first bytes are out of the ring)
  ++t_requests;
  // (Latency from the loop's time when it saw the bytes: its wake-up, no clock read of our own.)
  Kernel* kernel = site_.metrics != nullptr ? Kernel::current() : nullptr;
  std::int64_t started = kernel != nullptr ? kernel->now_ns() : 0;

  Request req;
  req.conn_ = this;
  req.head_ = &h;
  split_target(h.target, &req.path_, &req.query_);
  Response res;
  res.conn_ = this;
  res_ = &res;
  if (h.method == Method::kOptions && h.target == "*") {
    res.status_ = 200;
    char list[128];
    res.header("Allow", std::string_view(list, Router::allow_list(router.all_methods(), list)));
    co_await res.send("");
  } else {
    Router::Match m = router.find(h.method, req.path_);
    if (m.route != nullptr) {
      co_await m.route(req, res);
    } else if (m.allowed == 0) {
      co_await answer_simple(res, 404, 0, "no such resource\n");
    } else if (h.method == Method::kOptions) {
      co_await answer_simple(res, 204, m.allowed, "");
    } else {
      co_await answer_simple(res, 405, m.allowed, "method not allowed\n");
    }
  }
  // What the handler left: an unread body is read and dropped, an unfinished response ended.
  while (req.body_error_ == 0 && !parser_.body_done()) {
    std::string_view piece = co_await req.read_some();
    if (piece.empty()) break;
  }
  if (req.body_error_ != 0 && !res.started()) {
    if (const HttpMetrics* m = site_.metrics) {
      const metrics::ShardCells& cells = kernel->metrics();
      cells.add(m->bad_request(req.body_error_));
      cells.add(m->request(h.method, req.body_error_));
    }
    res_ = nullptr;
    co_await answer_error(req.body_error_, req.body_error_ == 413 ? "request body too large" : "bad request body");
    co_return false;
  }
  if (!res.started()) co_await res.send("");
  if (res.state_ == Response::State::kChunked) co_await res.end_chunked();
  res_ = nullptr;
  if (const HttpMetrics* m = site_.metrics) {
    const metrics::ShardCells& cells = kernel->metrics();
    cells.add(m->request(h.method, res.status_));
    cells.record(m->latency, static_cast<std::uint64_t>(monotonic_ns() - started));
  }
  if (req.body_error_ != 0) keep_alive_ = false;
  if (!keep_alive_) co_return false;
  s_.rx().consume(off_);
  off_ = 0;
  co_return true;
}

Task<> serve(Accepted& conn) {
  Connection c(conn, *static_cast<const Site*>(conn.message));
  co_await c.run();
}

}  // namespace mnv::http
