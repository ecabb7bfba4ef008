// net/http/request_parser.h — an incremental, zero-copy HTTP/1.1 request parser.
//
// Our own parser rather than llhttp, for three reasons. (1) Zero copy over the receive ring:
// llhttp reports each field through callbacks as fragments cut wherever its input was cut, so a
// header split across two reads or across the ring's wrap arrives in pieces the caller must
// glue together (a copy and a buffer per connection); this parser gives whole string_views into
// the ring and linearizes (into a caller's scratch buffer) only a head that straddles the wrap.
// (2) Speed: once the scanner (head_scanner.h, memchr for LF, each byte seen once however the
// input trickles in) has found the end of the head, the head is parsed in one tight pass with
// table lookups and no callbacks; perf/http_parser_bench.cc measures it against llhttp on the
// same input. (3) Server decisions: every bad-input case maps to its own Error and status (400,
// 413, 414, 431, 501, 505), Host is required in 1.1, identical duplicate Content-Lengths are
// accepted, and framing conflicts (Content-Length with Transfer-Encoding, differing lengths,
// chunked not last, bad chunk sizes) are refused — the request-smuggling rules of RFC 9112.
// llhttp stays in the project as the differential oracle of the fuzzer (net/http/fuzz/).
//
// Use (one parser per connection; nothing is allocated):
//   parse_head(in, scratch)  with `in` the buffered bytes from the request's first byte, called
//                            again as more arrive (only new bytes are scanned) until kComplete;
//                            head() then holds views into `in` (or into `scratch` when the head
//                            straddles the ring's wrap: kNeedScratch asks for scratch_needed()
//                            bytes). The views stay valid while those bytes stay buffered.
//   parse_body(in)           with `in` starting at head_size() (then after each step's
//                            `consumed`), until a step is done.
//   reset()                  before the next (pipelined) request, whose first byte follows.
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
#include "net/byte_spans.h"

namespace mnv::http {

enum class Method : std::uint8_t {
  kGet, kHead, kPost, kPut, kDelete, kConnect, kOptions, kTrace, kPatch, kOther,
};

enum class Framing : std::uint8_t {
  kNone,        // no body
  kLength,      // Content-Length bytes
  kChunked,     // Transfer-Encoding: chunked
  kUntilClose,  // (responses only) everything until the connection closes
};

enum class HeadStatus : std::uint8_t { kIncomplete, kComplete, kNeedScratch, kError };

struct RequestHead {
  Method method = Method::kOther;
  std::string_view method_name;  // as sent; a token, matched case-sensitively (RFC 9110 §9.1)
  std::string_view target;       // origin-, absolute-, authority- or asterisk-form, unchecked
  std::uint8_t version_minor = 1;  // HTTP/1.0 or HTTP/1.1 (others: 505)
  HeaderList headers;
  bool keep_alive = true;        // 1.1 unless Connection: close; 1.0 only with keep-alive
  bool expect_continue = false;  // Expect: 100-continue (answer 100 before reading the body)
  Framing framing = Framing::kNone;
  std::uint64_t content_length = 0;  // for Framing::kLength
};

class RequestParser {
 public:
  // The most bytes a method may have (the longest registered one is 17).
  static constexpr std::size_t kMaxMethod = 24;

  // Limits are checked here: max_head at most 65535, max_headers at most kMaxHeaderCapacity.
  explicit RequestParser(const Limits& limits = Limits{});

  HeadStatus parse_head(const ByteSpans& in, std::span<char> scratch = {});
  const RequestHead& head() const { return head_; }
  // Bytes of the head in the input (with any empty lines before the request line).
  std::size_t head_size() const { return scanner_.end(); }
  // After kNeedScratch: the scratch buffer size the head needs.
  std::size_t scratch_needed() const { return scanner_.end(); }

  BodyStep parse_body(const ByteSpans& in);
  bool body_done() const { return body_done_; }

  // After kError (or a step with an error): what was wrong, the status to answer, and the byte
  // offset from the request's first byte (head errors) where it was found.
  Error error() const { return error_; }
  int error_status() const { return status_of(error_); }
  std::size_t error_offset() const { return error_offset_; }

  void reset();

 private:
  HeadStatus fail(Error e, std::size_t offset);
  Error check_partial_line(const ByteSpans& in, std::size_t* offset) const;
  HeadStatus parse_complete(const char* base);

  Limits limits_;
  HeadScanner scanner_;
  RequestHead head_;
  ChunkedDecoder chunked_;
  std::uint64_t remaining_ = 0;  // Framing::kLength: body bytes left
  bool body_done_ = false;
  Error error_ = Error::kNone;
  std::size_t error_offset_ = 0;
};

// The method's canonical name ("GET"; "" for kOther).
std::string_view method_name(Method m);

}  // namespace mnv::http
