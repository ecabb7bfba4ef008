// net/http/response_parser.h — an incremental, zero-copy HTTP/1.1 response parser (client side).
//
// The same model as RequestParser (request_parser.h): parse_head() over the buffered bytes from
// the response's first byte until kComplete, then parse_body() steps; views point into the input
// (or into the caller's scratch buffer when the head straddles the ring's wrap). Framing follows
// RFC 9112 §6.3: no body for 1xx, 204 and 304 and for the answer to a HEAD request (say so with
// expect_no_body() before parsing it); chunked; Content-Length; otherwise the body runs until the
// connection closes (finish() ends it). A 1xx response is complete after its head: reset() and
// parse the final response that follows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "net/http/body_step.h"
#include "net/http/chunked_decoder.h"
#include "net/http/head_scanner.h"
#include "net/http/header_list.h"
#include "net/http/limits.h"
#include "net/http/parse_error.h"
#include "net/http/request_parser.h"
#include "net/byte_spans.h"

namespace mnv::http {

struct ResponseHead {
  std::uint8_t version_minor = 1;
  int status = 0;
  std::string_view reason;
  HeaderList headers;
  bool keep_alive = true;  // the connection may carry another request after this response
  Framing framing = Framing::kNone;
  std::uint64_t content_length = 0;
};

class ResponseParser {
 public:
  explicit ResponseParser(const Limits& limits = Limits{});

  // The response answers a HEAD request: it has no body whatever its fields say. Reset by reset().
  void expect_no_body() { no_body_ = true; }

  HeadStatus parse_head(const ByteSpans& in, std::span<char> scratch = {});
  const ResponseHead& head() const { return head_; }
  std::size_t head_size() const { return scanner_.end(); }
  std::size_t scratch_needed() const { return scanner_.end(); }

  BodyStep parse_body(const ByteSpans& in);
  // The connection closed (after every byte was given to parse_body): completes a body framed
  // until close; for any other body not yet done it is an error (kTruncated).
  BodyStep finish();
  bool body_done() const { return body_done_; }

  Error error() const { return error_; }
  std::size_t error_offset() const { return error_offset_; }

  void reset();

 private:
  HeadStatus fail(Error e, std::size_t offset);
  HeadStatus parse_complete(const char* base);

  Limits limits_;
  HeadScanner scanner_;
  ResponseHead head_;
  ChunkedDecoder chunked_;
  std::uint64_t remaining_ = 0;
  std::uint64_t received_ = 0;  // Framing::kUntilClose: bytes so far (bounded by max_body)
  bool no_body_ = false;
  bool body_done_ = false;
  Error error_ = Error::kNone;
  std::size_t error_offset_ = 0;
};

}  // namespace mnv::http
