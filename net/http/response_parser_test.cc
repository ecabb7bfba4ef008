// net/http/response_parser_test.cc — the client side's response parser: every framing (length,
// chunked, none for 1xx/204/304 and HEAD, until close), errors, and byte-boundary independence.
#include "net/http/response_parser.h"

#include <gtest/gtest.h>

#include <string>

#include "net/http/test_driver.h"

namespace mnv::http {
namespace {

using testing::drive;
using testing::DriveOptions;
using testing::Outcome;

Outcome parse(std::string_view in, const DriveOptions& opt = {}) {
  return drive<ResponseParser>(in, testing::whole(), opt);
}

TEST(ResponseParserTest, ContentLengthResponse) {
  Outcome o = parse("HTTP/1.1 200 OK\r\nContent-Length: 13\r\nServer: x\r\n\r\nHello, World!");
  ASSERT_EQ(o.error, Error::kNone);
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_EQ(o.messages[0].status, 200);
  EXPECT_EQ(o.messages[0].reason, "OK");
  EXPECT_EQ(o.messages[0].body, "Hello, World!");
  EXPECT_TRUE(o.messages[0].keep_alive);
  EXPECT_EQ(o.messages[0].framing, Framing::kLength);
}

TEST(ResponseParserTest, StatusLineWithoutReasonOrWithAnEmptyOne) {
  Outcome o = parse("HTTP/1.1 204\r\n\r\nHTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(o.error, Error::kNone);
  ASSERT_EQ(o.messages.size(), 2u);
  EXPECT_EQ(o.messages[0].status, 204);
  EXPECT_EQ(o.messages[1].status, 404);
  EXPECT_EQ(o.messages[1].reason, "");
}

TEST(ResponseParserTest, NoBodyFor1xx204And304WhateverTheFieldsSay) {
  Outcome o = parse(
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"
      "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  ASSERT_EQ(o.error, Error::kNone);
  ASSERT_EQ(o.messages.size(), 4u);
  EXPECT_EQ(o.messages[0].status, 100);
  EXPECT_EQ(o.messages[1].body, "");
  EXPECT_EQ(o.messages[2].body, "");
  EXPECT_EQ(o.messages[3].body, "ok");
}

TEST(ResponseParserTest, AnswersToHeadHaveNoBody) {
  DriveOptions opt;
  opt.head_requests = true;
  Outcome o = parse("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", opt);
  ASSERT_EQ(o.error, Error::kNone);
  ASSERT_EQ(o.messages.size(), 2u);
  EXPECT_EQ(o.messages[0].framing, Framing::kNone);
  EXPECT_FALSE(o.partial);
}

TEST(ResponseParserTest, ChunkedResponseWithTrailer) {
  Outcome o = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nHello, \r\n6\r\nWorld!\r\n0\r\nEtag: x\r\n\r\n");
  ASSERT_EQ(o.error, Error::kNone);
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_EQ(o.messages[0].body, "Hello, World!");
}

TEST(ResponseParserTest, BodyUntilCloseEndsAtEof) {
  Outcome o = parse("HTTP/1.0 200 OK\r\n\r\nall of this until the end");
  ASSERT_EQ(o.error, Error::kNone);
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_EQ(o.messages[0].framing, Framing::kUntilClose);
  EXPECT_EQ(o.messages[0].body, "all of this until the end");
  EXPECT_FALSE(o.messages[0].keep_alive);
}

TEST(ResponseParserTest, TruncatedBodyIsAnErrorAtEof) {
  ResponseParser p;
  std::string in = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
  ASSERT_EQ(p.parse_head(ByteSpans(in)), HeadStatus::kComplete);
  BodyStep s = p.parse_body(ByteSpans(std::string_view(in).substr(p.head_size())));
  EXPECT_EQ(s.data, "abc");
  EXPECT_FALSE(s.done);
  EXPECT_EQ(p.finish().error, Error::kTruncated);
}

TEST(ResponseParserTest, BadResponses) {
  struct {
    const char* in;
    Error error;
  } cases[] = {
      {"HTTP/1.1 20 OK\r\n\r\n", Error::kBadStatusLine},
      {"HTTP/1.1 200OK\r\n\r\n", Error::kBadStatusLine},
      {"HTTP/1.1 200 O\x01K\r\n\r\n", Error::kBadStatusLine},
      {"HTTP/2.0 200 OK\r\n\r\n", Error::kUnsupportedVersion},
      {"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", Error::kBadLineEnding},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
       Error::kContentLengthWithTransferEncoding},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", Error::kConflictingContentLength},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nq\r\n", Error::kBadChunk},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse(c.in).error, c.error) << c.in;
  }
}

TEST(ResponseParserTest, PipelinedResponsesParseTheSameSplitAtEveryByteAndAcrossTheWrap) {
  std::string_view batch =
      "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\nHello, World!"
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;e\r\nabc\r\n0\r\n\r\n"
      "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
      "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nrest";
  Outcome whole = parse(batch);
  ASSERT_EQ(whole.error, Error::kNone);
  ASSERT_EQ(whole.messages.size(), 5u);
  EXPECT_EQ(whole.messages[4].body, "rest");
  for (std::size_t k = 1; k < batch.size(); ++k) {
    ASSERT_EQ(drive<ResponseParser>(batch, testing::split_at(k)), whole) << "split at " << k;
  }
  DriveOptions opt;
  opt.ring_capacity = 128;
  for (std::size_t start = 0; start < opt.ring_capacity; ++start) {
    opt.ring_start = start;
    ASSERT_EQ(drive<ResponseParser>(batch, testing::bytewise(), opt), whole) << "ring start " << start;
    ASSERT_EQ(drive<ResponseParser>(batch, testing::whole(), opt), whole) << "ring start " << start;
  }
}

}  // namespace
}  // namespace mnv::http
