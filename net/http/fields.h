// net/http/fields.h — parses a complete head's header lines; sums up the fields that frame it.
//
// Shared by the request and response parsers: every field is indexed (HeaderList), and the ones
// that decide framing and connection handling (Content-Length, Transfer-Encoding, Connection,
// Expect, Host) are read in the same pass.
#pragma once

#include <cstdint>

#include "net/http/header_list.h"
#include "net/http/parse_error.h"

namespace mnv::http {

struct FieldSummary {
  bool has_content_length = false;
  std::uint64_t content_length = 0;   // saturates at UINT64_MAX (then over any body limit)
  bool has_transfer_encoding = false;
  bool chunked_last = false;          // the last transfer coding is chunked
  bool chunked_seen = false;
  bool chunked_twice = false;
  bool other_coding = false;          // a coding other than chunked
  bool connection_close = false;
  bool connection_keep_alive = false;
  bool expect_continue = false;
  std::uint8_t host_count = 0;
};

// Parses the header lines from `p` up to `end` (one past the head's final CRLF, whose blank line
// must be the last line) into `list` (reset to `base` by the caller) and `sum`. On error returns
// it and points *at to the offending byte.
Error parse_fields(const char* p, const char* end, std::uint32_t max_headers, HeaderList& list,
                   FieldSummary& sum, const char** at);

}  // namespace mnv::http
