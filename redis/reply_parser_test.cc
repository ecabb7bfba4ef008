// The RESP parser on every RESP2 and RESP3 type, nested aggregates, attributes, pipelined
// replies; each input also fed a byte at a time and placed across a ring's wrap at every offset;
// every ParseError with its offset, and every limit.
#include "redis/reply_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace mnv::redis {
namespace {

// A reply rendered back as text, to compare parses: strings quoted, aggregates bracketed.
std::string render(const Reply& r) {
  std::string out = type_name(r.type());
  switch (r.type()) {
    case Type::kInteger:
    case Type::kBoolean: return out + ":" + std::to_string(r.integer());
    case Type::kNull: return out;
    case Type::kArray:
    case Type::kMap:
    case Type::kSet:
    case Type::kPush: {
      out += "[";
      for (std::size_t i = 0; i < r.size(); ++i) out += (i ? "," : "") + render(r[i]);
      return out + "]";
    }
    default: {
      std::string s(r.str().size(), '\0');
      r.str().copy(0, s.size(), s.data());
      return out + ":'" + s + "'";
    }
  }
}

// Parses `wire` whole; returns the rendering, or "error:<offset>" (and *size the reply's size).
std::string parse_whole(std::string_view wire, std::size_t* size = nullptr, const Limits& limits = {}) {
  ReplyParser p(limits);
  ByteSpans in(wire);
  switch (p.parse(in)) {
    case ReplyParser::Status::kNeedMore: return "need-more";
    case ReplyParser::Status::kError: return "error:" + std::to_string(p.error_offset());
    case ReplyParser::Status::kComplete: break;
  }
  if (size != nullptr) *size = p.size();
  return render(p.reply(in));
}

// Feeds `wire` one more byte at a time into a ring of `wire.size() + 7` bytes whose data starts
// at `start` (so it wraps there), and expects the same result as parsing it whole.
void expect_incremental(std::string_view wire, const std::string& expected, std::size_t start) {
  std::vector<char> ring(wire.size() + 7, '#');
  const std::size_t cap = ring.size();
  start %= cap;
  for (std::size_t i = 0; i < wire.size(); ++i) ring[(start + i) % cap] = wire[i];
  ReplyParser p;
  for (std::size_t have = 1; have <= wire.size(); ++have) {
    std::size_t first = cap - start < have ? cap - start : have;
    ByteSpans in(std::string_view(ring.data() + start, first), std::string_view(ring.data(), have - first));
    ReplyParser::Status st = p.parse(in);
    if (st == ReplyParser::Status::kNeedMore) {
      ASSERT_LT(have, wire.size()) << "start " << start;
      continue;
    }
    if (st == ReplyParser::Status::kError) {
      ASSERT_EQ(expected, "error:" + std::to_string(p.error_offset())) << "start " << start << " have " << have;
      return;
    }
    ASSERT_EQ(render(p.reply(in)), expected) << "start " << start << " have " << have;
    return;
  }
}

void expect_everywhere(std::string_view wire, const std::string& expected) {
  for (std::size_t start = 0; start < wire.size() + 7; ++start) expect_incremental(wire, expected, start);
}

struct Case {
  std::string_view wire;
  std::string expected;
};

const Case kCases[] = {
    {"+OK\r\n", "simple string:'OK'"},
    {"-ERR unknown command 'FOO'\r\n", "error:'ERR unknown command 'FOO''"},
    {":0\r\n", "integer:0"},
    {":-42\r\n", "integer:-42"},
    {":9223372036854775807\r\n", "integer:9223372036854775807"},
    {":-9223372036854775808\r\n", "integer:-9223372036854775808"},
    {"$5\r\nhello\r\n", "bulk string:'hello'"},
    {"$0\r\n\r\n", "bulk string:''"},
    {"$4\r\na\r\nb\r\n", "bulk string:'a\r\nb'"},
    {"$-1\r\n", "null"},
    {"*-1\r\n", "null"},
    {"*0\r\n", "array[]"},
    {"*3\r\n:1\r\n$3\r\nfoo\r\n+bar\r\n", "array[integer:1,bulk string:'foo',simple string:'bar']"},
    {"*2\r\n*2\r\n:1\r\n:2\r\n*1\r\n$-1\r\n", "array[array[integer:1,integer:2],array[null]]"},
    {"_\r\n", "null"},
    {",3.25\r\n", "double:'3.25'"},
    {",-inf\r\n", "double:'-inf'"},
    {",1.5e10\r\n", "double:'1.5e10'"},
    {"#t\r\n", "boolean:1"},
    {"#f\r\n", "boolean:0"},
    {"(3492890328409238509324850943850943825024385\r\n", "big number:'3492890328409238509324850943850943825024385'"},
    {"!21\r\nSYNTAX invalid syntax\r\n", "blob error:'SYNTAX invalid syntax'"},
    {"=15\r\ntxt:Some string\r\n", "verbatim string:'Some string'"},
    {"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n", "map[simple string:'first',integer:1,simple string:'second',integer:2]"},
    {"~2\r\n+a\r\n+b\r\n", "set[simple string:'a',simple string:'b']"},
    {">2\r\n+message\r\n$2\r\nhi\r\n", "push[simple string:'message',bulk string:'hi']"},
    {"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.1923\r\n*2\r\n:2039123\r\n:9543892\r\n",
     "array[integer:2039123,integer:9543892]"},
    {"*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n", "array[integer:1,integer:2]"},
    {"%0\r\n", "map[]"},
};

TEST(ReplyParser, EveryTypeWholeByteByByteAndAcrossTheWrap) {
  for (const Case& c : kCases) {
    std::size_t size = 0;
    EXPECT_EQ(parse_whole(c.wire, &size), c.expected) << c.wire;
    EXPECT_EQ(size, c.wire.size()) << c.wire;
    expect_everywhere(c.wire, c.expected);
  }
}

TEST(ReplyParser, PipelinedRepliesOneAfterAnother) {
  std::string wire = "+OK\r\n:7\r\n*2\r\n$1\r\na\r\n$-1\r\n-ERR x\r\n";
  std::vector<std::string> got;
  ReplyParser p;
  std::string_view rest = wire;
  while (!rest.empty()) {
    ByteSpans in(rest);
    ASSERT_EQ(p.parse(in), ReplyParser::Status::kComplete);
    got.push_back(render(p.reply(in)));
    rest.remove_prefix(p.size());
    p.reset();
  }
  EXPECT_EQ(got, (std::vector<std::string>{"simple string:'OK'", "integer:7", "array[bulk string:'a',null]",
                                           "error:'ERR x'"}));
}

TEST(ReplyParser, ZeroCopyViewsPointIntoTheInput) {
  std::string wire = "*2\r\n$5\r\nhello\r\n+world\r\n";
  ReplyParser p;
  ByteSpans in(wire);
  ASSERT_EQ(p.parse(in), ReplyParser::Status::kComplete);
  Reply r = p.reply(in);
  EXPECT_EQ(r[0].str().first().data(), wire.data() + 8);
  EXPECT_EQ(r[1].str().first().data(), wire.data() + 16);
  EXPECT_TRUE(r[0].str() == "hello");
  EXPECT_EQ(r.nodes(), 3u);
}

TEST(ReplyParser, AStringAcrossTheWrapIsTwoPieces) {
  std::string a = "$10\r\nhello", b = "world\r\n";
  ReplyParser p;
  ByteSpans in(a, b);
  ASSERT_EQ(p.parse(in), ReplyParser::Status::kComplete);
  ByteSpans s = p.reply(in).str();
  EXPECT_FALSE(s.contiguous());
  EXPECT_EQ(s.first(), "hello");
  EXPECT_EQ(s.second(), "world");
  EXPECT_TRUE(s == "helloworld");
  char buf[16];
  EXPECT_EQ(std::string(buf, s.copy_to(buf, sizeof buf)), "helloworld");
}

TEST(ReplyParser, DoublesParse) {
  ReplyParser p;
  ByteSpans in(std::string_view(",-2.5e3\r\n"));
  ASSERT_EQ(p.parse(in), ReplyParser::Status::kComplete);
  EXPECT_EQ(p.reply(in).to_double(), -2500.0);
}

struct Bad {
  std::string_view wire;
  ParseError error;
  std::size_t offset;
};

TEST(ReplyParser, EveryErrorWithItsOffset) {
  const Bad cases[] = {
      {"?x\r\n", ParseError::kBadType, 0},
      {"*2\r\n:1\r\nX\r\n", ParseError::kBadType, 8},
      {":12a\r\n", ParseError::kBadInteger, 0},
      {":\r\n", ParseError::kBadInteger, 0},
      {":-\r\n", ParseError::kBadInteger, 0},
      {":9223372036854775808\r\n", ParseError::kBadInteger, 0},
      {":+1\r\n", ParseError::kBadInteger, 0},
      {"$-2\r\n", ParseError::kBadLength, 0},
      {"$x\r\n", ParseError::kBadLength, 0},
      {"%-1\r\n", ParseError::kBadLength, 0},
      {"!-1\r\n", ParseError::kBadLength, 0},
      {",1.2.x\r\n", ParseError::kBadDouble, 0},
      {",\r\n", ParseError::kBadDouble, 0},
      {"#x\r\n", ParseError::kBadBoolean, 0},
      {"#tt\r\n", ParseError::kBadBoolean, 0},
      {"_x\r\n", ParseError::kBadNull, 0},
      {"=3\r\ntxt\r\n", ParseError::kBadVerbatim, 0},
      {"=5\r\ntxt-a\r\n", ParseError::kBadVerbatim, 0},
      {"+OK\rX", ParseError::kBadTerminator, 0},
      {"$3\r\nfooXY", ParseError::kBadTerminator, 7},
      {"(12x\r\n", ParseError::kBadInteger, 0},
      {"$?\r\n", ParseError::kStreamed, 0},
      {"*?\r\n", ParseError::kStreamed, 0},
  };
  for (const Bad& c : cases) {
    ReplyParser p;
    ASSERT_EQ(p.parse(ByteSpans(c.wire)), ReplyParser::Status::kError) << c.wire;
    EXPECT_EQ(p.error(), c.error) << c.wire << ": " << describe(p.error());
    EXPECT_EQ(p.error_offset(), c.offset) << c.wire;
    EXPECT_NE(std::string(describe(p.error())), "?");
    // Once failed, it stays failed.
    EXPECT_EQ(p.parse(ByteSpans(c.wire)), ReplyParser::Status::kError);
  }
}

TEST(ReplyParser, Limits) {
  Limits l;
  l.max_depth = 2;
  l.max_nodes = 4;
  l.max_line = 8;
  l.max_bulk = 10;
  auto error_of = [&](std::string_view wire) {
    ReplyParser p(l);
    ReplyParser::Status st = p.parse(ByteSpans(wire));
    return st == ReplyParser::Status::kError ? p.error() : ParseError::kNone;
  };
  EXPECT_EQ(error_of("*1\r\n*1\r\n:1\r\n"), ParseError::kNone);
  EXPECT_EQ(error_of("*1\r\n*1\r\n*1\r\n:1\r\n"), ParseError::kTooDeep);
  EXPECT_EQ(error_of("*1\r\n*1\r\n*0\r\n"), ParseError::kTooDeep);  // (found by the fuzzer)
  EXPECT_EQ(error_of("*3\r\n:1\r\n:2\r\n:3\r\n"), ParseError::kNone);
  EXPECT_EQ(error_of("*4\r\n"), ParseError::kTooManyNodes);  // known from the header alone
  EXPECT_EQ(error_of("*2\r\n*1\r\n:1\r\n*1\r\n:2\r\n"), ParseError::kTooManyNodes);
  EXPECT_EQ(error_of("+12345678\r\n"), ParseError::kNone);
  EXPECT_EQ(error_of("+123456789\r\n"), ParseError::kLineTooLong);
  EXPECT_EQ(error_of("+123456789"), ParseError::kLineTooLong);  // known before the \r\n comes
  EXPECT_EQ(error_of("$10\r\n"), ParseError::kNone);               // (needs more)
  EXPECT_EQ(error_of("$11\r\n"), ParseError::kBulkTooLarge);
  EXPECT_EQ(error_of(":1111111111111111111111111111111111111111111111111111111111111111111"),
            ParseError::kBadInteger);
}

TEST(ReplyParser, NeedsMoreUntilTheLastByte) {
  std::string_view wire = "*2\r\n$3\r\nfoo\r\n:1\r\n";
  for (std::size_t n = 0; n < wire.size(); ++n) {
    ReplyParser p;
    EXPECT_EQ(p.parse(ByteSpans(wire.substr(0, n))), ReplyParser::Status::kNeedMore) << n;
  }
}

}  // namespace
}  // namespace mnv::redis
