// net/http/request_parser.cc — request line, fields and framing rules; the body steps.
#include "net/http/request_parser.h"

#include <cstring>

#include "mem/log.h"
#include "net/http/chars.h"
#include "net/http/fields.h"

namespace mnv::http {
namespace {

Method method_of(const char* p, std::size_t n) {
  switch (n) {
    case 3:
      if (std::memcmp(p, "GET", 3) == 0) return Method::kGet;
      if (std::memcmp(p, "PUT", 3) == 0) return Method::kPut;
      break;
    case 4:
      if (std::memcmp(p, "POST", 4) == 0) return Method::kPost;
      if (std::memcmp(p, "HEAD", 4) == 0) return Method::kHead;
      break;
    case 5:
      if (std::memcmp(p, "PATCH", 5) == 0) return Method::kPatch;
      if (std::memcmp(p, "TRACE", 5) == 0) return Method::kTrace;
      break;
    case 6:
      if (std::memcmp(p, "DELETE", 6) == 0) return Method::kDelete;
      break;
    case 7:
      if (std::memcmp(p, "OPTIONS", 7) == 0) return Method::kOptions;
      if (std::memcmp(p, "CONNECT", 7) == 0) return Method::kConnect;
      break;
    default:
      break;
  }
  return Method::kOther;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// RFC 3986 §3.2: unreserved, pct-encoded, sub-delims, ":", "@", "[", "]".
bool authority_ok(std::string_view a) {
  for (char c : a) {
    if (!is_alpha(c) && !is_digit(c) && std::strchr("-._~%!$&'()*+,;=:@[]", c) == nullptr) return false;
  }
  return true;
}

// RFC 9112 §3.2: origin-form (/path), absolute-form (scheme://authority...), asterisk-form (*),
// and authority-form (host:port) for CONNECT only.
bool target_form_ok(std::string_view t, Method m) {
  if (t[0] == '/') return true;
  if (m == Method::kConnect) return authority_ok(t);
  if (t == "*") return true;
  if (!is_alpha(t[0])) return false;
  // The scheme: letters only (http, https; RFC 3986 allows digits, "+", "-", "." too, which no
  // HTTP scheme uses and llhttp refuses).
  std::size_t i = 1;
  while (i < t.size() && is_alpha(t[i])) ++i;
  if (t.substr(i, 3) != "://") return false;
  i += 3;
  std::size_t end = i;
  while (end < t.size() && t[end] != '/' && t[end] != '?') ++end;  // (no fragment in a target)
  return authority_ok(t.substr(i, end - i));
}

}  // namespace

std::string_view method_name(Method m) {
  switch (m) {
    case Method::kGet: return "GET";
    case Method::kHead: return "HEAD";
    case Method::kPost: return "POST";
    case Method::kPut: return "PUT";
    case Method::kDelete: return "DELETE";
    case Method::kConnect: return "CONNECT";
    case Method::kOptions: return "OPTIONS";
    case Method::kTrace: return "TRACE";
    case Method::kPatch: return "PATCH";
    case Method::kOther: return "";
  }
  return "";
}

RequestParser::RequestParser(const Limits& limits)
    : limits_(limits), chunked_(limits.max_body, limits.max_head) {
  MNV_ASSERT(limits.max_head > 0 && limits.max_head <= 65535);
  MNV_ASSERT(limits.max_headers <= Limits::kMaxHeaderCapacity);
}

void RequestParser::reset() {
  scanner_ = HeadScanner();
  head_.headers.reset(nullptr);
  chunked_.reset();
  remaining_ = 0;
  body_done_ = false;
  error_ = Error::kNone;
  error_offset_ = 0;
}

HeadStatus RequestParser::fail(Error e, std::size_t offset) {
  error_ = e;
  error_offset_ = offset;
  return HeadStatus::kError;
}

// While the head is incomplete: a request line that already shows a target over the limit (414)
// or a method that cannot be one (400), so a client cannot hold a connection with it. It decides
// exactly as parse_complete() would (same error, same offset), only sooner.
Error RequestParser::check_partial_line(const ByteSpans& in, std::size_t* offset) const {
  std::size_t start = scanner_.start();
  std::size_t line_end = scanner_.line_end() != 0 ? scanner_.line_end() : in.size();
  if (line_end - start <= limits_.max_target) return Error::kNone;
  std::size_t m = start;
  while (m < line_end && m - start <= kMaxMethod && chars::token(in[m])) ++m;
  *offset = start;
  if (m - start > kMaxMethod) return Error::kBadRequestLine;
  if (m == line_end) return Error::kNone;  // (cannot happen: the line is longer than the method)
  if (m == start || in[m] != ' ') return Error::kBadRequestLine;
  std::size_t t = m + 1;
  std::size_t q = t;
  while (q < line_end && q - t <= limits_.max_target && chars::target(in[q])) ++q;
  *offset = t;
  return q - t > limits_.max_target ? Error::kTargetTooLong : Error::kNone;
}

HeadStatus RequestParser::parse_head(const ByteSpans& in, std::span<char> scratch) {
  if (error_ != Error::kNone) return HeadStatus::kError;
  switch (scanner_.scan(in, limits_.max_head)) {
    case HeadScanner::Result::kMore: {
      std::size_t at = 0;
      Error e = check_partial_line(in, &at);
      return e == Error::kNone ? HeadStatus::kIncomplete : fail(e, at);
    }
    case HeadScanner::Result::kTooLarge: {
      std::size_t at = 0;
      Error e = check_partial_line(in, &at);
      return e == Error::kNone ? fail(Error::kHeadTooLarge, scanner_.start()) : fail(e, at);
    }
    case HeadScanner::Result::kComplete:
      break;
  }
  const char* base = in.linear(scanner_.end(), scratch.data(), scratch.size());
  return base != nullptr ? parse_complete(base) : HeadStatus::kNeedScratch;
}

HeadStatus RequestParser::parse_complete(const char* base) {
  const char* p = base + scanner_.start();
  const char* line_end = base + scanner_.line_end();  // one past LF
  RequestHead& h = head_;
  auto at = [&](const char* q) { return static_cast<std::size_t>(q - base); };

  // method SP
  const char* q = p;
  while (chars::token(*q)) ++q;
  if (q == p || *q != ' ' || static_cast<std::size_t>(q - p) > kMaxMethod) {
    return fail(Error::kBadRequestLine, at(p));  // (the line's start: as check_partial_line says)
  }
  h.method_name = std::string_view(p, static_cast<std::size_t>(q - p));
  h.method = method_of(p, h.method_name.size());
  // request-target SP
  const char* t = ++q;
  q = chars::skip_target(q, line_end);
  if (static_cast<std::size_t>(q - t) > limits_.max_target) return fail(Error::kTargetTooLong, at(t));
  if (q == t || *q != ' ') return fail(Error::kBadRequestLine, at(q));
  h.target = std::string_view(t, static_cast<std::size_t>(q - t));
  if (!target_form_ok(h.target, h.method)) return fail(Error::kBadTarget, at(t));
  // HTTP-version CRLF
  ++q;
  if (line_end - q != 10 || std::memcmp(q, "HTTP/", 5) != 0 || !is_digit(q[5]) || q[6] != '.' ||
      !is_digit(q[7])) {
    if (line_end[-2] != '\r') return fail(Error::kBadLineEnding, at(line_end - 1));
    return fail(Error::kBadRequestLine, at(q));
  }
  if (q[8] != '\r') return fail(Error::kBadRequestLine, at(q + 8));
  // 1.0 and 1.1 only: HTTP/1.2 and up do not exist (llhttp refuses them too).
  if (q[5] != '1' || q[7] > '1') return fail(Error::kUnsupportedVersion, at(q));
  h.version_minor = static_cast<std::uint8_t>(q[7] - '0');

  // header fields
  FieldSummary sum;
  std::size_t err_at = 0;
  Error e = parse_fields(base, line_end, base + scanner_.end(), limits_.max_headers, h.headers, sum, &err_at);
  if (e != Error::kNone) return fail(e, err_at);

  std::size_t end = scanner_.end();
  if (h.version_minor >= 1 && sum.host_count == 0) return fail(Error::kMissingHost, end);
  if (sum.host_count > 1) return fail(Error::kDuplicateHost, end);
  h.keep_alive = keeps_alive(h.version_minor, sum);
  h.expect_continue = sum.expect_continue && h.version_minor >= 1;
  h.content_length = 0;
  if (sum.has_transfer_encoding) {
    if (sum.has_content_length) return fail(Error::kContentLengthWithTransferEncoding, end);
    if (h.version_minor == 0) return fail(Error::kTransferEncodingInHttp10, end);
    if (sum.chunked_twice || !sum.chunked_last) return fail(Error::kBadTransferEncoding, end);
    if (sum.other_coding) return fail(Error::kUnsupportedTransferEncoding, end);
    h.framing = Framing::kChunked;
    body_done_ = false;
  } else if (sum.has_content_length && sum.content_length > 0) {
    if (sum.content_length > limits_.max_body) return fail(Error::kBodyTooLarge, end);
    h.framing = Framing::kLength;
    h.content_length = remaining_ = sum.content_length;
    body_done_ = false;
  } else {
    h.framing = Framing::kNone;
    body_done_ = true;
  }
  return HeadStatus::kComplete;
}

BodyStep RequestParser::parse_body(const ByteSpans& in) {
  BodyStep s;
  if (error_ != Error::kNone) {
    s.error = error_;
    return s;
  }
  if (body_done_) {
    s.done = true;
    return s;
  }
  if (head_.framing == Framing::kChunked) {
    s = chunked_.step(in);
    if (s.error != Error::kNone) error_ = s.error;
    body_done_ = s.done;
    return s;
  }
  s = length_step(in.run(0), &remaining_);
  body_done_ = s.done;
  return s;
}

}  // namespace mnv::http
