// net/http/response_head.h — writes a response's status line and header fields into a caller's
// buffer (typically the connection's send ring), with no allocation.
//
//   ResponseHeadWriter w(buf, sizeof buf);
//   w.status(200);
//   w.date(shard_date);  w.server("mnv");  w.content_length(13);
//   if (!keep_alive) w.connection_close();
//   std::size_t n = w.end();   // 0: it did not fit, or a field was invalid (see failed())
//
// Names must be tokens and values field-values without CR or LF (no response splitting): a bad
// one makes the writer fail rather than send it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/http/date.h"

namespace mnv::http {

class ResponseHeadWriter {
 public:
  ResponseHeadWriter(char* buf, std::size_t cap) : buf_(buf), cap_(cap) {}

  // "HTTP/1.1 <status> <reason>\r\n"; first.
  void status(int code);
  void header(std::string_view name, std::string_view value);
  void date(const HttpDate& d) { raw_field("Date: ", d.value()); }
  void server(std::string_view product) { header("Server", product); }
  void content_length(std::uint64_t n);
  // Bytes this writer's own calls formatted earlier (a cached status line and fields), as they are.
  void prebuilt(std::string_view head_start) { put(head_start); }
  void chunked() { raw_field("Transfer-Encoding: ", "chunked"); }
  void connection_close() { raw_field("Connection: ", "close"); }
  void connection_keep_alive() { raw_field("Connection: ", "keep-alive"); }
  // The blank line. Returns the head's size, or 0 when it did not fit or a field was invalid.
  std::size_t end();

  bool failed() const { return failed_; }
  std::size_t size() const { return len_; }

 private:
  void put(std::string_view s);
  void raw_field(std::string_view name_colon_space, std::string_view value);

  char* buf_;
  std::size_t cap_;
  std::size_t len_ = 0;
  bool failed_ = false;
};

}  // namespace mnv::http
