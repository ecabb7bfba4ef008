// net/http/response_head_test.cc — the response head writer: exact bytes, overflow, injection.
#include "net/http/response_head.h"

#include <gtest/gtest.h>

#include <string>

#include "net/http/response_parser.h"
#include "net/http/status.h"

namespace mnv::http {
namespace {

TEST(ResponseHeadWriterTest, WritesStatusDateServerLengthConnection) {
  HttpDate date;
  date.set(784111777);
  char buf[256];
  ResponseHeadWriter w(buf, sizeof buf);
  w.status(200);
  w.server("mnv");
  w.date(date);
  w.header("Content-Type", "text/plain");
  w.content_length(13);
  w.connection_close();
  std::size_t n = w.end();
  EXPECT_EQ(std::string(buf, n),
            "HTTP/1.1 200 OK\r\nServer: mnv\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
            "Content-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\n");
  // What it writes, our own parser reads.
  ResponseParser p;
  ASSERT_EQ(p.parse_head(ByteSpans(std::string_view(buf, n))), HeadStatus::kComplete);
  EXPECT_EQ(p.head().status, 200);
  EXPECT_EQ(p.head().content_length, 13u);
  EXPECT_FALSE(p.head().keep_alive);
}

TEST(ResponseHeadWriterTest, ChunkedAndErrorStatuses) {
  char buf[128];
  ResponseHeadWriter w(buf, sizeof buf);
  w.status(431);
  w.chunked();
  w.content_length(0);
  std::size_t n = w.end();
  EXPECT_EQ(std::string(buf, n),
            "HTTP/1.1 431 Request Header Fields Too Large\r\nTransfer-Encoding: chunked\r\n"
            "Content-Length: 0\r\n\r\n");
  EXPECT_EQ(reason_phrase(505), "HTTP Version Not Supported");
  EXPECT_EQ(reason_phrase(299), "Unknown");
}

TEST(ResponseHeadWriterTest, AHeadThatDoesNotFitWritesNothingUsable) {
  char buf[20];
  ResponseHeadWriter w(buf, sizeof buf);
  w.status(200);
  w.content_length(1234567890);
  EXPECT_EQ(w.end(), 0u);
  EXPECT_TRUE(w.failed());
}

TEST(ResponseHeadWriterTest, RefusesFieldsThatWouldSplitTheResponse) {
  char buf[256];
  ResponseHeadWriter a(buf, sizeof buf);
  a.status(200);
  a.header("X", "a\r\nSet-Cookie: evil");
  EXPECT_EQ(a.end(), 0u);
  ResponseHeadWriter b(buf, sizeof buf);
  b.status(200);
  b.header("Bad Name", "v");
  EXPECT_EQ(b.end(), 0u);
  ResponseHeadWriter c(buf, sizeof buf);
  c.status(1000);
  EXPECT_EQ(c.end(), 0u);
}

}  // namespace
}  // namespace mnv::http
