// redis/reply_parser.cc — the incremental RESP2/RESP3 reply parser (reply_parser.h).
#include "redis/reply_parser.h"

#include <cstring>

#include "mem/log.h"

namespace mnv::redis {
namespace {

constexpr std::size_t kMaxNumberLine = 64;  // an integer, length, double or big number's line

// A strict decimal: optional '-', then 1-19 digits, no overflow. False otherwise.
bool parse_int(const ByteSpans& in, std::size_t off, std::size_t len, std::int64_t* out) {
  if (len == 0 || len > 20) return false;
  bool neg = in[off] == '-';
  std::size_t i = neg ? 1 : 0;
  if (i == len) return false;
  std::uint64_t v = 0;
  for (; i < len; ++i) {
    char c = in[off + i];
    if (c < '0' || c > '9') return false;
    std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  std::uint64_t limit = neg ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1;
  if (v > limit) return false;
  *out = neg ? static_cast<std::int64_t>(0 - v) : static_cast<std::int64_t>(v);
  return true;
}

bool valid_double(const ByteSpans& in, std::size_t off, std::size_t len) {
  if (len == 0) return false;
  ByteSpans s = in.sub(off, len);
  if (s == "inf" || s == "-inf" || s == "+inf" || s == "nan" || s == "-nan") return true;
  bool digit = false;
  for (std::size_t i = 0; i < len; ++i) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-') {
      return false;
    }
  }
  return digit;
}

bool valid_big_number(const ByteSpans& in, std::size_t off, std::size_t len) {
  std::size_t i = len > 0 && in[off] == '-' ? 1 : 0;
  if (i == len) return false;
  for (; i < len; ++i) {
    if (in[off + i] < '0' || in[off + i] > '9') return false;
  }
  return true;
}

}  // namespace

const char* describe(ParseError e) {
  switch (e) {
    case ParseError::kNone: return "no error";
    case ParseError::kBadType: return "an element starts with a byte that is no RESP2/RESP3 type (not a Redis reply?)";
    case ParseError::kBadLength: return "a length or element count is not a non-negative decimal (or -1 for a null)";
    case ParseError::kBadInteger: return "an integer is not a decimal that fits in 64 bits";
    case ParseError::kBadDouble: return "a double is not a decimal, inf, -inf or nan";
    case ParseError::kBadBoolean: return "a boolean is neither #t nor #f";
    case ParseError::kBadNull: return "a null (_) is followed by more than \\r\\n";
    case ParseError::kBadVerbatim: return "a verbatim string lacks its 3-letter format and ':'";
    case ParseError::kBadTerminator: return "a line or payload is not followed by \\r\\n";
    case ParseError::kLineTooLong: return "a simple string or error is longer than Limits::max_line (raise it)";
    case ParseError::kBulkTooLarge: return "a bulk string is larger than Limits::max_bulk (raise it)";
    case ParseError::kTooDeep: return "aggregates nest deeper than Limits::max_depth (raise it, up to kMaxDepth)";
    case ParseError::kTooManyNodes:
      return "the reply has more elements than Limits::max_nodes (raise it up to kMaxNodes, or ask for fewer)";
    case ParseError::kStreamed: return "a RESP3 streamed string or aggregate ($? or *?), which this client does not read";
  }
  return "?";
}

ReplyParser::ReplyParser(const Limits& limits) : limits_(limits) {
  if (limits_.max_depth > kMaxDepth) limits_.max_depth = kMaxDepth;
  if (limits_.max_nodes > kMaxNodes) limits_.max_nodes = kMaxNodes;
  if (limits_.max_nodes == 0) limits_.max_nodes = 1;
}

void ReplyParser::reset() {
  status_ = Status::kNeedMore;
  error_ = ParseError::kNone;
  pos_ = 0;
  used_ = 0;
  depth_ = 0;
}

bool ReplyParser::element_done() {
  while (depth_ > 0) {
    Frame& f = stack_[depth_ - 1];
    if (--f.remaining > 0) return false;
    --depth_;
    nodes_[f.node].span = used_ - f.node;
    if (f.attribute) {
      used_ = f.node;  // dropped; the element it annotates comes next
      return false;
    }
  }
  return true;
}

ReplyParser::Status ReplyParser::parse(const ByteSpans& in) {
  if (status_ != Status::kNeedMore) return status_;
  const std::size_t size = in.size();
  for (;;) {
    if (pos_ >= size) return Status::kNeedMore;
    const char t = in[pos_];
    bool string_line = t == '+' || t == '-';
    switch (t) {
      case '+': case '-': case ':': case '$': case '*': case ',': case '#': case '_': case '(': case '!':
      case '=': case '%': case '~': case '>': case '|': break;
      default: return fail(ParseError::kBadType);
    }
    // The header line: [pos_ + 1, cr), then \r\n.
    const std::size_t max = string_line ? limits_.max_line : kMaxNumberLine;
    const std::size_t start = pos_ + 1;
    const std::size_t cr = in.find('\r', start, start + max + 1);
    if (cr == start + max + 1 || (cr == size && size >= start + max + 1)) {
      return fail(string_line ? ParseError::kLineTooLong
                  : (t == ':' ? ParseError::kBadInteger
                     : t == ',' ? ParseError::kBadDouble
                     : t == '(' ? ParseError::kBadInteger
                     : t == '#' ? ParseError::kBadBoolean
                     : t == '_' ? ParseError::kBadNull : ParseError::kBadLength));
    }
    if (cr + 1 >= size) return Status::kNeedMore;
    if (in[cr + 1] != '\n') return fail(ParseError::kBadTerminator);
    const std::size_t line = cr - start;
    std::size_t next = cr + 2;
    if (used_ >= limits_.max_nodes) return fail(ParseError::kTooManyNodes);
    Node& n = nodes_[used_];
    n.len = 0;
    n.value = 0;
    switch (t) {
      case '+':
      case '-':
        n.type = t == '+' ? Type::kSimpleString : Type::kError;
        n.off = static_cast<std::uint32_t>(start);
        n.len = static_cast<std::uint32_t>(line);
        break;
      case ':':
        n.type = Type::kInteger;
        if (!parse_int(in, start, line, &n.value)) return fail(ParseError::kBadInteger);
        break;
      case ',':
        n.type = Type::kDouble;
        if (!valid_double(in, start, line)) return fail(ParseError::kBadDouble);
        n.off = static_cast<std::uint32_t>(start);
        n.len = static_cast<std::uint32_t>(line);
        break;
      case '(':
        n.type = Type::kBigNumber;
        if (!valid_big_number(in, start, line)) return fail(ParseError::kBadInteger);
        n.off = static_cast<std::uint32_t>(start);
        n.len = static_cast<std::uint32_t>(line);
        break;
      case '#':
        n.type = Type::kBoolean;
        if (line != 1 || (in[start] != 't' && in[start] != 'f')) return fail(ParseError::kBadBoolean);
        n.value = in[start] == 't' ? 1 : 0;
        break;
      case '_':
        n.type = Type::kNull;
        if (line != 0) return fail(ParseError::kBadNull);
        break;
      case '$':
      case '!':
      case '=': {
        if (line == 1 && in[start] == '?') return fail(ParseError::kStreamed);
        std::int64_t len;
        if (!parse_int(in, start, line, &len) || len < -1 || (len == -1 && t != '$')) {
          return fail(ParseError::kBadLength);
        }
        if (len == -1) {
          n.type = Type::kNull;
          break;
        }
        if (static_cast<std::uint64_t>(len) > limits_.max_bulk || next + static_cast<std::uint64_t>(len) > UINT32_MAX) {
          return fail(ParseError::kBulkTooLarge);
        }
        const std::size_t end = next + static_cast<std::size_t>(len);
        if (end + 2 > size) return Status::kNeedMore;
        if (in[end] != '\r' || in[end + 1] != '\n') {
          pos_ = end;
          return fail(ParseError::kBadTerminator);
        }
        n.type = t == '$' ? Type::kBulkString : t == '!' ? Type::kBlobError : Type::kVerbatim;
        n.off = static_cast<std::uint32_t>(next);
        n.len = static_cast<std::uint32_t>(len);
        if (t == '=') {
          if (len < 4 || in[next + 3] != ':') return fail(ParseError::kBadVerbatim);
          n.off += 4;
          n.len -= 4;
        }
        next = end + 2;
        break;
      }
      default: {  // '*', '%', '~', '>', '|': an aggregate
        if (line == 1 && in[start] == '?') return fail(ParseError::kStreamed);
        std::int64_t count;
        if (!parse_int(in, start, line, &count) || count < -1 || (count == -1 && t != '*')) {
          return fail(ParseError::kBadLength);
        }
        if (count == -1) {
          n.type = Type::kNull;
          break;
        }
        const bool pairs = t == '%' || t == '|';
        if (static_cast<std::uint64_t>(count) * (pairs ? 2 : 1) + used_ + 1 > limits_.max_nodes) {
          return fail(ParseError::kTooManyNodes);
        }
        if (depth_ >= limits_.max_depth) return fail(ParseError::kTooDeep);  // (an empty one too)
        const auto elements = static_cast<std::uint32_t>(count * (pairs ? 2 : 1));
        n.type = t == '*' ? Type::kArray : t == '%' || t == '|' ? Type::kMap : t == '~' ? Type::kSet : Type::kPush;
        n.len = elements;
        n.span = 1;
        if (elements == 0) {
          if (t == '|') {  // an empty attribute: nothing to keep
            pos_ = next;
            continue;
          }
          break;
        }
        stack_[depth_++] = Frame{used_, elements, t == '|'};
        ++used_;
        pos_ = next;
        continue;
      }
    }
    ++used_;
    pos_ = next;
    if (element_done()) {
      status_ = Status::kComplete;
      return status_;
    }
  }
}

}  // namespace mnv::redis
