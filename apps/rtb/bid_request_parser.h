// apps/rtb/bid_request_parser.h — JSON body -> BidRequest, with simdjson on-demand, in place.
//
// Why on-demand: a bidder reads a few dozen of a request's fields; on-demand parses only what it
// is asked for and skips the rest (unknown fields, `ext`) at stage-1 speed. One parser per shard,
// allocated once to the largest body allowed, so a parse never allocates; a larger body is
// refused as too large (the server answers 413). Fields come in any order: each object is
// iterated once, switching on the key. A malformed body, a field of the wrong type, or a request
// without `id`/`imp` is refused as invalid (400) with a reason naming the field
// (e.g. "imp[1].banner.format[0].w: expected an integer from 0 to 65535").
//
// The body is parsed in place: the caller's buffer must hold SIMDJSON_PADDING (64) readable bytes
// after the body (kPadding; their content does not matter). Not thread-safe: one per shard.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "apps/rtb/bid_request.h"

namespace mnv::rtb {

enum class ParseStatus {
  kOk,
  kTooLarge,  // the body or one of its lists is over a fixed limit: answer 413
  kInvalid,   // malformed JSON, a wrong type, a missing required field: answer 400
};

struct ParseResult {
  ParseStatus status = ParseStatus::kOk;
  // Why, for kTooLarge and kInvalid: a NUL-terminated line owned by the parser, valid until the
  // next parse; "" for kOk.
  std::string_view reason;
  bool ok() const { return status == ParseStatus::kOk; }
};

class BidRequestParser {
 public:
  // Readable bytes the buffer must hold after the body.
  static constexpr std::size_t kPadding = 64;
  // Allocates everything a parse of a body of up to `max_body_bytes` needs (about 6 bytes per
  // byte of capacity). Aborts when the memory cannot be had (a startup failure).
  explicit BidRequestParser(std::size_t max_body_bytes);
  ~BidRequestParser();
  BidRequestParser(const BidRequestParser&) = delete;
  BidRequestParser& operator=(const BidRequestParser&) = delete;

  std::size_t max_body_bytes() const { return max_body_bytes_; }

  // Parses body[0..len) into *out (cleared first). `capacity` is the size of the buffer at `body`:
  // it must be at least len + kPadding. On failure *out is partly filled and must not be used.
  ParseResult parse(const char* body, std::size_t len, std::size_t capacity, BidRequest* out);

  struct Impl;  // (simdjson's parser and the reason buffer, in bid_request_parser.cc)

 private:
  std::size_t max_body_bytes_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mnv::rtb
