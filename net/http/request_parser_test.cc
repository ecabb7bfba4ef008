// net/http/request_parser_test.cc — the request parser: fields, framing, keep-alive, every
// bad-input outcome, and the same result however the bytes arrive (whole, byte by byte, split at
// every boundary, across the ring's wrap); no global allocation per request.
#include "net/http/request_parser.h"

#include <gtest/gtest.h>

#include <string>

#include "net/http/test_driver.h"
#include "runtime/global_alloc_counter.h"

namespace mnv::http {
namespace {

using testing::drive;
using testing::DriveOptions;
using testing::Outcome;

Outcome parse(std::string_view in, const DriveOptions& opt = {}) {
  return drive<RequestParser>(in, testing::whole(), opt);
}

Error parse_error(std::string_view in, const Limits& limits = Limits{}) {
  DriveOptions opt;
  opt.limits = limits;
  return parse(in, opt).error;
}

TEST(RequestParserTest, ParsesASimpleGet) {
  Outcome o = parse("GET /plaintext?x=1 HTTP/1.1\r\nHost: a.example\r\nAccept:  text/plain  \r\n\r\n");
  ASSERT_EQ(o.error, Error::kNone);
  ASSERT_EQ(o.messages.size(), 1u);
  const auto& m = o.messages[0];
  EXPECT_EQ(m.method, "GET");
  EXPECT_EQ(m.target, "/plaintext?x=1");
  EXPECT_EQ(m.version_minor, 1);
  ASSERT_EQ(m.headers.size(), 2u);
  EXPECT_EQ(m.headers[0].first, "Host");
  EXPECT_EQ(m.headers[0].second, "a.example");
  EXPECT_EQ(m.headers[1].second, "text/plain");  // surrounding whitespace trimmed
  EXPECT_TRUE(m.keep_alive);
  EXPECT_EQ(m.framing, Framing::kNone);
  EXPECT_FALSE(o.partial);
}

TEST(RequestParserTest, HeadViewsPointIntoTheInputAndFindIsCaseInsensitive) {
  std::string in = "POST /echo HTTP/1.1\r\nHOST: h\r\nContent-Length: 5\r\n\r\nhello";
  RequestParser p;
  ASSERT_EQ(p.parse_head(ByteSpans(in)), HeadStatus::kComplete);
  const RequestHead& h = p.head();
  EXPECT_EQ(h.method, Method::kPost);
  EXPECT_GE(h.target.data(), in.data());
  EXPECT_LT(h.target.data(), in.data() + in.size());
  EXPECT_EQ(h.headers.find("host"), "h");
  bool found = true;
  EXPECT_EQ(h.headers.find("accept", &found), "");
  EXPECT_FALSE(found);
  EXPECT_EQ(h.framing, Framing::kLength);
  EXPECT_EQ(h.content_length, 5u);
  EXPECT_EQ(p.head_size(), in.size() - 5);
  BodyStep s = p.parse_body(ByteSpans(std::string_view(in).substr(p.head_size())));
  EXPECT_EQ(s.data, "hello");
  EXPECT_EQ(s.consumed, 5u);
  EXPECT_TRUE(s.done);
}

TEST(RequestParserTest, KeepAliveSemantics) {
  auto keep = [](std::string_view in) {
    Outcome o = parse(in);
    EXPECT_EQ(o.error, Error::kNone) << in;
    return !o.messages.empty() && o.messages[0].keep_alive;
  };
  EXPECT_TRUE(keep("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_TRUE(keep("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
}

TEST(RequestParserTest, ExpectContinueHeadAndOptionsAsterisk) {
  Outcome o = parse(
      "POST /u HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\nabc"
      "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"
      "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_EQ(o.error, Error::kNone);
  ASSERT_EQ(o.messages.size(), 4u);
  EXPECT_TRUE(o.messages[0].expect_continue);
  EXPECT_EQ(o.messages[0].body, "abc");
  EXPECT_EQ(o.messages[1].method, "HEAD");
  EXPECT_FALSE(o.messages[1].expect_continue);
  EXPECT_EQ(o.messages[2].method, "OPTIONS");
  EXPECT_EQ(o.messages[2].target, "*");
  EXPECT_FALSE(o.messages[3].expect_continue);  // 1.0 clients cannot expect 100
}

TEST(RequestParserTest, MethodsAreRecognisedAndUnknownTokensKept) {
  RequestParser p;
  std::string in = "PROPFIND /d HTTP/1.1\r\nHost: h\r\n\r\n";
  ASSERT_EQ(p.parse_head(ByteSpans(in)), HeadStatus::kComplete);
  EXPECT_EQ(p.head().method, Method::kOther);
  EXPECT_EQ(p.head().method_name, "PROPFIND");
  EXPECT_EQ(method_name(Method::kDelete), "DELETE");
}

TEST(RequestParserTest, ChunkedBodyWithExtensionsAndTrailersIgnored) {
  Outcome o = parse(
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value;q=\"a \\\" b\";flag\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\n"
      "GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(o.error, Error::kNone);
  ASSERT_EQ(o.messages.size(), 2u);
  EXPECT_EQ(o.messages[0].framing, Framing::kChunked);
  EXPECT_EQ(o.messages[0].body, "helloabcdefghijklmnopqrstuvwxyz");
  EXPECT_EQ(o.messages[1].target, "/next");
}

TEST(RequestParserTest, IdenticalDuplicateContentLengthIsAccepted) {
  Outcome o = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab");
  ASSERT_EQ(o.error, Error::kNone);
  EXPECT_EQ(o.messages.at(0).body, "ab");
}

TEST(RequestParserTest, EmptyLinesBeforeTheRequestLineAreSkipped) {
  Outcome o = parse("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(o.error, Error::kNone);
  EXPECT_EQ(o.messages.size(), 1u);
}

struct BadCase {
  const char* name;
  const char* input;
  Error error;
  int status;
};

TEST(RequestParserTest, EveryBadInputHasItsOwnErrorAndStatus) {
  const BadCase cases[] = {
      {"no target", "GET HTTP/1.1\r\nHost: h\r\n\r\n", Error::kBadRequestLine, 400},
      {"two spaces", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", Error::kBadRequestLine, 400},
      {"control in target", "GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n", Error::kBadRequestLine, 400},
      {"target form", "GET example.com HTTP/1.1\r\nHost: h\r\n\r\n", Error::kBadTarget, 400},
      {"bad authority", "GET http://a b/ HTTP/1.1\r\nHost: h\r\n\r\n", Error::kBadRequestLine, 400},
      {"non-ASCII authority", "GET http://\xc3\xa9/ HTTP/1.1\r\nHost: h\r\n\r\n", Error::kBadTarget, 400},
      {"scheme without //", "GET http:x HTTP/1.1\r\nHost: h\r\n\r\n", Error::kBadTarget, 400},
      {"lower-case version", "GET / http/1.1\r\nHost: h\r\n\r\n", Error::kBadRequestLine, 400},
      {"junk after version", "GET / HTTP/1.1x\r\nHost: h\r\n\r\n", Error::kBadRequestLine, 400},
      {"bare LF request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", Error::kBadLineEnding, 400},
      {"bare LF header", "GET / HTTP/1.1\r\nHost: h\n\r\n", Error::kBadLineEnding, 400},
      {"bare CR in value", "GET / HTTP/1.1\r\nHost: h\rx\r\n\r\n", Error::kBadLineEnding, 400},
      {"space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", Error::kBadHeader, 400},
      {"no colon", "GET / HTTP/1.1\r\nHost h\r\n\r\n", Error::kBadHeader, 400},
      {"empty name", "GET / HTTP/1.1\r\n: h\r\nHost: h\r\n\r\n", Error::kBadHeader, 400},
      {"NUL in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a<NUL>b\r\n\r\n", Error::kBadHeader, 400},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", Error::kObsoleteLineFolding, 400},
      {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", Error::kUnsupportedVersion, 505},
      {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", Error::kUnsupportedVersion, 505},
      {"HTTP/0.9", "GET / HTTP/0.9\r\nHost: h\r\n\r\n", Error::kUnsupportedVersion, 505},
      {"no Host", "GET / HTTP/1.1\r\n\r\n", Error::kMissingHost, 400},
      {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Error::kDuplicateHost, 400},
      {"CL and TE", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       Error::kContentLengthWithTransferEncoding, 400},
      {"TE and CL", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
       Error::kContentLengthWithTransferEncoding, 400},
      {"differing CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
       Error::kConflictingContentLength, 400},
      {"CL list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\n", Error::kBadContentLength, 400},
      {"CL sign", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n", Error::kBadContentLength, 400},
      {"CL empty", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", Error::kBadContentLength, 400},
      {"chunked not last", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
       Error::kBadTransferEncoding, 400},
      {"chunked twice", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       Error::kBadTransferEncoding, 400},
      {"TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Error::kTransferEncodingInHttp10, 400},
      {"gzip, chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
       Error::kUnsupportedTransferEncoding, 501},
      {"chunk size not hex", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
       Error::kBadChunk, 400},
      {"chunk size empty", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
       Error::kBadChunk, 400},
      {"chunk size space", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
       Error::kBadChunk, 400},
      {"chunk size overflow", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\n",
       Error::kBadChunk, 400},
      {"chunk data too long", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
       Error::kBadChunkEnd, 400},
      {"bad chunk extension", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;a b\r\nx\r\n0\r\n\r\n",
       Error::kBadChunk, 400},
      {"empty chunk extension", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;;a\r\nx\r\n0\r\n\r\n",
       Error::kBadChunk, 400},
      {"empty chunk extension value", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;a=\r\nx\r\n0\r\n\r\n",
       Error::kBadChunk, 400},
      {"bad trailer", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
       Error::kBadTrailer, 400},
      {"CL over max_body", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n", Error::kBodyTooLarge, 413},
      {"CL past 64 bits", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
       Error::kBodyTooLarge, 413},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::string in = c.input;
    if (std::size_t nul = in.find("<NUL>"); nul != std::string::npos) in.replace(nul, 5, 1, '\0');
    Error e = parse_error(in);
    EXPECT_EQ(e, c.error) << describe(e);
    EXPECT_EQ(status_of(e), c.status);
  }
}

TEST(RequestParserTest, SizeLimits) {
  Limits l;
  l.max_target = 16;
  l.max_head = 128;
  l.max_headers = 3;
  l.max_body = 10;
  EXPECT_EQ(parse_error("GET /0123456789abcde HTTP/1.1\r\nHost: h\r\n\r\n", l), Error::kNone);  // 16: fits
  EXPECT_EQ(parse_error("GET /0123456789abcdef HTTP/1.1\r\nHost: h\r\n\r\n", l), Error::kTargetTooLong);
  EXPECT_EQ(parse_error("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", l), Error::kNone);
  EXPECT_EQ(parse_error("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", l), Error::kTooManyHeaders);
  EXPECT_EQ(status_of(Error::kTooManyHeaders), 431);
  std::string big = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(100, 'x') + "\r\n\r\n";
  EXPECT_EQ(parse_error(big, l), Error::kHeadTooLarge);
  EXPECT_EQ(parse_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789", l), Error::kNone);
  EXPECT_EQ(parse_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", l), Error::kBodyTooLarge);
  EXPECT_EQ(parse_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", l),
            Error::kNone);
  EXPECT_EQ(parse_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n", l),
            Error::kBodyTooLarge);
  std::string trailer = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: " +
                        std::string(200, 't') + "\r\n\r\n";
  EXPECT_EQ(parse_error(trailer, l), Error::kHeadTooLarge);
}

// A client cannot hold a connection with a request line that will be refused anyway.
TEST(RequestParserTest, AnOverlongTargetIsRefusedBeforeTheHeadEnds) {
  Limits l;
  l.max_target = 16;
  RequestParser p(l);
  std::string in = "GET /0123456789abcde";  // 16 bytes of target so far: within the limit
  EXPECT_EQ(p.parse_head(ByteSpans(in)), HeadStatus::kIncomplete);
  in += "f";
  EXPECT_EQ(p.parse_head(ByteSpans(in)), HeadStatus::kError);
  EXPECT_EQ(p.error(), Error::kTargetTooLong);
  EXPECT_EQ(p.error_status(), 414);
  RequestParser q(l);
  EXPECT_EQ(q.parse_head(ByteSpans(std::string(40, 'G'))), HeadStatus::kError);
  EXPECT_EQ(q.error(), Error::kBadRequestLine);  // no space: no method can be this long
}

// Refused early or at the head's end, a request line gets the same error at the same offset.
TEST(RequestParserTest, AnOverlongLineIsJudgedTheSameHoweverItArrives) {
  DriveOptions opt;
  opt.limits.max_target = 16;
  const char* lines[] = {
      "GET /0123456789abcdefgh HTTP/1.1\r\nHost: h\r\n\r\n",          // 414
      "GE,T /0123456789abcdefgh HTTP/1.1\r\nHost: h\r\n\r\n",         // 400: not a method
      "SUBSCRIBEANDSOMEMOREVERYLONGMETHOD / HTTP/1.1\r\nHost: h\r\n\r\n",  // 400: too long
      "GET /0123456789\x01" "ghijklmn HTTP/1.1\r\nHost: h\r\n\r\n",  // 400: control in target
  };
  for (const char* in : lines) {
    Outcome whole = drive<RequestParser>(in, testing::whole(), opt);
    ASSERT_NE(whole.error, Error::kNone) << in;
    EXPECT_EQ(drive<RequestParser>(in, testing::bytewise(), opt), whole) << in;
  }
}

TEST(RequestParserTest, AHeadAcrossTheWrapNeedsScratchAndIsCopiedThere) {
  std::string in = "GET /wrap HTTP/1.1\r\nHost: h\r\n\r\n";
  ByteSpans two(std::string_view(in).substr(0, 10), std::string_view(in).substr(10));
  RequestParser p;
  EXPECT_EQ(p.parse_head(two), HeadStatus::kNeedScratch);
  EXPECT_EQ(p.scratch_needed(), in.size());
  std::vector<char> scratch(p.scratch_needed());
  ASSERT_EQ(p.parse_head(two, scratch), HeadStatus::kComplete);
  EXPECT_EQ(p.head().target, "/wrap");
  EXPECT_EQ(p.head().target.data(), scratch.data() + 4);
}

// The pipelined batch used by the split tests: every framing, keep-alive and close.
const char kBatch[] =
    "GET /a HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n\r\n"
    "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"
    "\r\nPUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3\r\nabc\r\n10;x=y\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\n"
    "HEAD /d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    "OPTIONS * HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz"
    "GET /e HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";

TEST(RequestParserTest, PipelinedBatchParsesTheSameSplitAtEveryByte) {
  std::string_view batch(kBatch, sizeof kBatch - 1);
  Outcome whole = parse(batch);
  ASSERT_EQ(whole.error, Error::kNone);
  ASSERT_EQ(whole.messages.size(), 6u);
  EXPECT_EQ(whole.messages[1].body, "hello world");
  EXPECT_EQ(whole.messages[2].body, "abc0123456789abcdef");
  EXPECT_FALSE(whole.messages[5].keep_alive);
  EXPECT_FALSE(whole.partial);
  for (std::size_t k = 1; k < batch.size(); ++k) {
    ASSERT_EQ(drive<RequestParser>(batch, testing::split_at(k)), whole) << "split at " << k;
  }
  EXPECT_EQ(drive<RequestParser>(batch, testing::bytewise()), whole);
}

TEST(RequestParserTest, PipelinedBatchParsesTheSameAcrossTheWrapAtEveryOffset) {
  std::string_view batch(kBatch, sizeof kBatch - 1);
  Outcome whole = parse(batch);
  DriveOptions opt;
  opt.ring_capacity = 160;  // smaller than the batch: every message goes round the ring
  for (std::size_t start = 0; start < opt.ring_capacity; ++start) {
    opt.ring_start = start;
    ASSERT_EQ(drive<RequestParser>(batch, testing::whole(), opt), whole) << "ring start " << start;
    ASSERT_EQ(drive<RequestParser>(batch, testing::bytewise(), opt), whole) << "ring start " << start;
    ASSERT_EQ(drive<RequestParser>(batch, testing::split_at(start % 97 + 1), opt), whole)
        << "ring start " << start;
  }
}

TEST(RequestParserTest, ErrorsAreTheSameHoweverTheBytesArrive) {
  const char* bad[] = {
      "GET / HTTP/1.1\r\nHost: h\r\n\r\nPOST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\n\r\nPOST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\nx\r\n",
      "GET / HTTP/3.0\r\n\r\n",
  };
  for (const char* in : bad) {
    Outcome whole = parse(in);
    ASSERT_NE(whole.error, Error::kNone);
    for (std::size_t k = 1; k < std::string_view(in).size(); ++k) {
      ASSERT_EQ(drive<RequestParser>(in, testing::split_at(k)), whole) << in << " split at " << k;
    }
    DriveOptions opt;
    opt.ring_capacity = 128;
    opt.ring_start = 100;
    EXPECT_EQ(drive<RequestParser>(in, testing::bytewise(), opt), whole);
  }
}

TEST(RequestParserTest, AnIncompleteStreamIsPartialNotAnError) {
  Outcome o = parse("GET / HTTP/1.1\r\nHost: h\r\n\r\nPOST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nabc");
  EXPECT_EQ(o.error, Error::kNone);
  EXPECT_EQ(o.messages.size(), 1u);
  EXPECT_TRUE(o.partial);
}

// Steady state: parsing pipelined requests in place makes no global allocation.
TEST(RequestParserTest, ParsingAllocatesNothing) {
  std::string batch;
  for (int i = 0; i < 16; ++i) {
    batch += "GET /plaintext HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\nConnection: keep-alive\r\n\r\n";
    batch += "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n";
  }
  RequestParser p;
  long before = global_allocations();
  std::size_t requests = 0;
  for (int round = 0; round < 10000; ++round) {
    ByteSpans in{std::string_view(batch)};
    while (!in.empty()) {
      p.reset();
      if (p.parse_head(in) != HeadStatus::kComplete) break;
      in = in.advanced(p.head_size());
      for (;;) {
        BodyStep s = p.parse_body(in);
        in = in.advanced(s.consumed);
        if (s.done || s.error != Error::kNone) break;
      }
      ++requests;
    }
  }
  long after = global_allocations();
  EXPECT_EQ(requests, 320000u);
  EXPECT_EQ(after - before, 0) << "global allocations while parsing";
}

}  // namespace
}  // namespace mnv::http
