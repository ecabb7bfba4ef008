// net/http/fields.h — parses a complete head's header lines; sums up the fields that frame it.
//
// Shared by the request and response parsers: every field is indexed (HeaderList), and the ones
// that decide framing and connection handling (Content-Length, Transfer-Encoding, Connection,
// Expect, Host) are read in the same pass.
#pragma once

#include <cstddef>
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

// Parses the header lines of a complete head at `base` (the head's bytes in one piece), from
// `p` (after the start line) up to `end` (one past the head's final CRLF, whose blank line must
// be the last line) into `list` (reset here to index from `base`) and `sum`. On error returns it
// and sets *offset to the offending byte's offset from `base`.
Error parse_fields(const char* base, const char* p, const char* end, std::uint32_t max_headers,
                   HeaderList& list, FieldSummary& sum, std::size_t* offset);

// Whether the connection stays open after this message: by default in 1.1 unless
// `Connection: close`; in 1.0 only with `Connection: keep-alive` (and no close).
inline bool keeps_alive(std::uint8_t version_minor, const FieldSummary& sum) {
  return version_minor >= 1 ? !sum.connection_close : sum.connection_keep_alive && !sum.connection_close;
}

}  // namespace mnv::http
