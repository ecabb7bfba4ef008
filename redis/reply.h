// redis/reply.h — a parsed RESP2/RESP3 reply: a read-only view over the receive ring.
//
// The parser (reply_parser.h) turns a reply into a flat array of Nodes in pre-order (an
// aggregate's elements follow it, each followed by its own elements); string payloads are not
// copied: a node holds their offset from the reply's first byte, and Reply resolves it against
// the ring's bytes (net/byte_spans.h), which may be two pieces. A Reply is valid until its bytes are
// consumed from the ring (the next receive on its connection).
//
//   Reply r = ...;
//   if (r.is_error()) log(r.str());                 // "-ERR ..." / "!..." (the text, no '-')
//   else if (r.type() == Type::kInteger) n = r.integer();
//   else for (std::size_t i = 0; i < r.size(); ++i) use(r[i]);   // an aggregate's elements
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/byte_spans.h"

namespace mnv::redis {

enum class Type : std::uint8_t {
  kSimpleString,  // +OK           (RESP2)
  kError,         // -ERR ...      (RESP2)
  kInteger,       // :42           (RESP2)
  kBulkString,    // $3 foo        (RESP2)
  kArray,         // *2 ...        (RESP2)
  kNull,          // $-1, *-1 (RESP2), _ (RESP3)
  kDouble,        // ,3.14         (RESP3; str() is its text, to_double() parses it)
  kBoolean,       // #t / #f       (RESP3; integer() is 1 or 0)
  kBigNumber,     // (1234...      (RESP3; str() is its digits)
  kBlobError,     // !21 ...       (RESP3)
  kVerbatim,      // =15 txt:...   (RESP3; str() is the text after "txt:")
  kMap,           // %2 k v k v    (RESP3; size() counts keys and values)
  kSet,           // ~2 ...        (RESP3)
  kPush,          // >3 ...        (RESP3, out of band)
};

// "simple string", "array", ...: for messages.
const char* type_name(Type t);

// One parsed element. Strings: off/len into the reply's bytes; integers and booleans: value;
// aggregates: len elements, span nodes in the subtree (itself included).
struct Node {
  Type type;
  std::uint32_t len;
  union {
    std::int64_t value;
    struct {
      std::uint32_t off;
      std::uint32_t span;
    };
  };
};
static_assert(sizeof(Node) == 16);

inline bool is_aggregate(Type t) { return t == Type::kArray || t == Type::kMap || t == Type::kSet || t == Type::kPush; }

class Reply {
 public:
  Reply() = default;
  // `node` and the nodes after it are the reply's; `data` its bytes from its first byte on.
  Reply(const Node* node, const ByteSpans& data) : n_(node), data_(data) {}

  bool valid() const { return n_ != nullptr; }
  Type type() const { return n_->type; }
  bool is_error() const { return n_->type == Type::kError || n_->type == Type::kBlobError; }
  bool is_null() const { return n_->type == Type::kNull; }
  // kInteger, kBoolean.
  std::int64_t integer() const { return n_->value; }
  // The payload of a string-like reply (simple, bulk, error, verbatim, double, big number).
  ByteSpans str() const { return data_.sub(n_->off, n_->len); }
  // A double's value (kDouble; also an integer or a bulk string holding a number). 0 if none.
  double to_double() const;
  // An aggregate's element count (a map's keys and values both count); 0 otherwise.
  std::size_t size() const { return is_aggregate(n_->type) ? n_->len : 0; }
  // The i-th element of an aggregate (i < size()); walks the elements before it.
  Reply operator[](std::size_t i) const;
  // Nodes in this reply's subtree (itself included).
  std::size_t nodes() const { return is_aggregate(n_->type) ? n_->span : 1; }

 private:
  const Node* n_ = nullptr;
  ByteSpans data_;
};

}  // namespace mnv::redis
