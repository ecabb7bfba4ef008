// net/http/response_parser.cc — status line, fields and response framing; the body steps.
#include "net/http/response_parser.h"

#include <cstring>

#include "mem/log.h"
#include "net/http/chars.h"
#include "net/http/fields.h"

namespace mnv::http {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

ResponseParser::ResponseParser(const Limits& limits)
    : limits_(limits), chunked_(limits.max_body, limits.max_head) {
  MNV_ASSERT(limits.max_head > 0 && limits.max_head <= 65535);
  MNV_ASSERT(limits.max_headers <= Limits::kMaxHeaderCapacity);
}

void ResponseParser::reset() {
  scanner_ = HeadScanner();
  head_.headers.reset(nullptr);
  chunked_.reset();
  remaining_ = received_ = 0;
  no_body_ = body_done_ = false;
  error_ = Error::kNone;
  error_offset_ = 0;
}

HeadStatus ResponseParser::fail(Error e, std::size_t offset) {
  error_ = e;
  error_offset_ = offset;
  return HeadStatus::kError;
}

HeadStatus ResponseParser::parse_head(const ByteSpans& in, std::span<char> scratch) {
  if (error_ != Error::kNone) return HeadStatus::kError;
  switch (scanner_.scan(in, limits_.max_head)) {
    case HeadScanner::Result::kMore:
      return HeadStatus::kIncomplete;
    case HeadScanner::Result::kTooLarge:
      return fail(Error::kHeadTooLarge, scanner_.start());
    case HeadScanner::Result::kComplete:
      break;
  }
  const char* base = in.linear(scanner_.end(), scratch.data(), scratch.size());
  return base != nullptr ? parse_complete(base) : HeadStatus::kNeedScratch;
}

HeadStatus ResponseParser::parse_complete(const char* base) {
  const char* q = base + scanner_.start();
  const char* line_end = base + scanner_.line_end();
  ResponseHead& h = head_;
  auto at = [&](const char* r) { return static_cast<std::size_t>(r - base); };

  // HTTP-version SP status-code [SP reason-phrase] CRLF
  if (line_end - q < 14 || std::memcmp(q, "HTTP/", 5) != 0 || !is_digit(q[5]) || q[6] != '.' ||
      !is_digit(q[7]) || q[8] != ' ' || !is_digit(q[9]) || !is_digit(q[10]) || !is_digit(q[11])) {
    return fail(Error::kBadStatusLine, at(q));
  }
  if (line_end[-2] != '\r') return fail(Error::kBadLineEnding, at(line_end - 1));
  if (q[5] != '1') return fail(Error::kUnsupportedVersion, at(q));
  h.version_minor = q[7] == '0' ? 0 : 1;
  h.status = (q[9] - '0') * 100 + (q[10] - '0') * 10 + (q[11] - '0');
  const char* r = q + 12;
  if (*r == ' ') {
    ++r;
  } else if (*r != '\r') {
    return fail(Error::kBadStatusLine, at(r));
  }
  const char* reason = r;
  while (chars::field_value(*r)) ++r;
  if (r != line_end - 2) return fail(Error::kBadStatusLine, at(r));
  h.reason = std::string_view(reason, static_cast<std::size_t>(r - reason));

  FieldSummary sum;
  std::size_t err_at = 0;
  Error e = parse_fields(base, line_end, base + scanner_.end(), limits_.max_headers, h.headers, sum, &err_at);
  if (e != Error::kNone) return fail(e, err_at);

  std::size_t end = scanner_.end();
  h.keep_alive = keeps_alive(h.version_minor, sum);
  h.content_length = 0;
  body_done_ = false;
  if (no_body_ || h.status < 200 || h.status == 204 || h.status == 304) {
    h.framing = Framing::kNone;
    body_done_ = true;
  } else if (sum.has_transfer_encoding) {
    if (sum.has_content_length) return fail(Error::kContentLengthWithTransferEncoding, end);
    if (sum.chunked_twice) return fail(Error::kBadTransferEncoding, end);
    if (sum.other_coding && sum.chunked_last) return fail(Error::kUnsupportedTransferEncoding, end);
    if (sum.chunked_last) {
      h.framing = Framing::kChunked;
    } else {
      h.framing = Framing::kUntilClose;  // RFC 9112 §6.3 (4)
      h.keep_alive = false;
    }
  } else if (sum.has_content_length) {
    if (sum.content_length > limits_.max_body) return fail(Error::kBodyTooLarge, end);
    h.framing = sum.content_length > 0 ? Framing::kLength : Framing::kNone;
    h.content_length = remaining_ = sum.content_length;
    body_done_ = sum.content_length == 0;
  } else {
    h.framing = Framing::kUntilClose;
    h.keep_alive = false;
  }
  return HeadStatus::kComplete;
}

BodyStep ResponseParser::parse_body(const ByteSpans& in) {
  BodyStep s;
  if (error_ != Error::kNone) {
    s.error = error_;
    return s;
  }
  if (body_done_) {
    s.done = true;
    return s;
  }
  switch (head_.framing) {
    case Framing::kChunked:
      s = chunked_.step(in);
      if (s.error != Error::kNone) error_ = s.error;
      body_done_ = s.done;
      return s;
    case Framing::kUntilClose: {
      std::string_view run = in.run(0);
      if (run.size() > limits_.max_body - received_) {
        error_ = s.error = Error::kBodyTooLarge;
        return s;
      }
      received_ += run.size();
      s.consumed = run.size();
      s.data = run;
      return s;
    }
    default: {
      s = length_step(in.run(0), &remaining_);
      body_done_ = s.done;
      return s;
    }
  }
}

BodyStep ResponseParser::finish() {
  BodyStep s;
  if (error_ == Error::kNone && !body_done_) {
    if (scanner_.end() != 0 && head_.framing == Framing::kUntilClose) {
      body_done_ = true;
    } else {
      error_ = Error::kTruncated;
    }
  }
  s.error = error_;
  s.done = body_done_;
  return s;
}

}  // namespace mnv::http
