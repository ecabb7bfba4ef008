// redis/reply_parser.h — an incremental RESP2 + RESP3 reply parser over the receive ring.
//
// Fed all the bytes buffered so far from a reply's first byte on (one or two pieces: a reply may
// straddle the ring's wrap), parse() goes on from where the last call stopped, so bytes that
// arrive one at a time cost no re-scan; kComplete gives the reply (reply.h: views into the same
// bytes, nothing copied) and its size, which the caller consumes from the ring after use. The
// next reply starts with reset().
//
// Everything is bounded, fixed up front (TigerStyle): nesting depth, element nodes (a fixed
// array in the parser, no allocation), the length of a line (simple strings, errors, numbers) and
// of a bulk string; a reply that breaks a limit, or that is not RESP, is a ParseError with the
// byte offset where it went wrong (describe() says what and what to do). After an error the
// connection's framing is lost: the caller drops the connection.
//
// Not supported (a clear error): RESP3 streamed strings and aggregates ($?, *?), which Redis
// itself never sends. Attributes (|) are parsed and dropped, as the protocol allows a client to.
//
// Why our own and not hiredis's reader (libhiredis-dev 0.14): hiredis copies every reply into its
// own growing buffer (sds) and builds it out of malloc'ed objects through callbacks, where we
// want the reply read in place in the micro-heap's ring with no global allocation in steady
// state; and 0.14 reads RESP2 only. The parser is small, fuzzed (tools/fuzz_resp.sh) and tested
// at every split point and across the wrap.
#pragma once

#include <cstddef>
#include <cstdint>

#include "net/byte_spans.h"
#include "redis/reply.h"

namespace mnv::redis {

// The parser's fixed capacities; Limits may only lower them.
inline constexpr std::uint32_t kMaxNodes = 512;
inline constexpr std::uint32_t kMaxDepth = 16;

struct Limits {
  std::uint32_t max_depth = 8;                // nested aggregates (1: no aggregate inside one)
  std::uint32_t max_nodes = kMaxNodes;        // elements in one reply, all levels together
  std::uint32_t max_line = 512;               // a simple string's or error's bytes
  std::uint64_t max_bulk = 64u << 20;         // a bulk string's bytes
};

enum class ParseError : std::uint8_t {
  kNone,
  kBadType,        // the first byte of an element is not a RESP type
  kBadLength,      // a length or count that is not a non-negative decimal (or -1 where allowed)
  kBadInteger,     // an integer or big number that is not a decimal that fits in 64 bits
  kBadDouble,      // not a RESP3 double
  kBadBoolean,     // #t or #f
  kBadNull,        // _ followed by something
  kBadVerbatim,    // a verbatim string without its "xxx:" format
  kBadTerminator,  // a line or payload not followed by \r\n
  kLineTooLong,    // Limits::max_line
  kBulkTooLarge,   // Limits::max_bulk
  kTooDeep,        // Limits::max_depth
  kTooManyNodes,   // Limits::max_nodes
  kStreamed,       // a RESP3 streamed string or aggregate (unsupported)
};

// One line: what is wrong and, where it is a limit, which one to raise.
const char* describe(ParseError e);

class ReplyParser {
 public:
  enum class Status : std::uint8_t { kNeedMore, kComplete, kError };

  explicit ReplyParser(const Limits& limits = {});

  // Parses on from where the last call stopped. `in`: every buffered byte from the reply's first
  // one on (it may hold more after the reply; the earlier bytes must be the same as last time).
  Status parse(const ByteSpans& in);
  // Forgets the reply (after its bytes were consumed): the next parse() starts a new one.
  void reset();

  // After kComplete: the reply (views into `in`, valid while those bytes are) and its size.
  Reply reply(const ByteSpans& in) const { return Reply(nodes_, in); }
  std::size_t size() const { return pos_; }
  // After kError: what and the offset from the reply's first byte where it was found.
  ParseError error() const { return error_; }
  std::size_t error_offset() const { return pos_; }

 private:
  struct Frame {
    std::uint32_t node;       // the aggregate's node
    std::uint32_t remaining;  // elements still to come
    bool attribute;           // an attribute: dropped when done, not an element of its parent
  };
  Status fail(ParseError e) {
    error_ = e;
    status_ = Status::kError;
    return status_;
  }
  // An element ended at pos_: closes the aggregates it completes. True when the reply is done.
  bool element_done();

  Limits limits_;
  Status status_ = Status::kNeedMore;
  ParseError error_ = ParseError::kNone;
  std::size_t pos_ = 0;  // where the next element starts (after kComplete: the reply's size)
  std::uint32_t used_ = 0;
  std::uint32_t depth_ = 0;
  Frame stack_[kMaxDepth];
  Node nodes_[kMaxNodes];
};

}  // namespace mnv::redis
