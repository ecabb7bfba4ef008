// net/http/chunked_decoder.h — decodes a chunked body (RFC 9112 §7.1) incrementally, in place.
//
// Chunk data comes back as views into the input; only the framing (size lines, CRLFs, the
// trailer section) is read byte by byte, so it may be split anywhere. Chunk extensions and
// trailer fields are checked for shape (`;name[=token|"quoted"]`, `name: value`) and ignored. A size that is not hex, overflows, or is
// followed by anything but an extension and CRLF is an error (400: no request smuggling).
#pragma once

#include <cstdint>

#include "net/http/body_step.h"
#include "net/byte_spans.h"

namespace mnv::http {

class ChunkedDecoder {
 public:
  // `max_body` bounds the sum of chunk sizes (413), `max_trailer` the trailer section (431).
  ChunkedDecoder(std::uint64_t max_body, std::uint32_t max_trailer)
      : max_body_(max_body), max_trailer_(max_trailer) {}

  // `in` starts right after the bytes consumed by the previous steps.
  BodyStep step(const ByteSpans& in);
  std::uint64_t total() const { return total_; }
  void reset() {
    state_ = State::kSize;
    size_ = remaining_ = total_ = 0;
    digits_ = 0;
    ext_len_ = 0;
    trailer_bytes_ = 0;
  }

 private:
  enum class State : std::uint8_t {
    kSize, kExtName, kExtValue, kExtQuoted, kExtQuotedEscape, kExtAfterQuoted, kSizeLF, kData,
    kDataCR, kDataLF,
    kTrailerStart, kTrailerName, kTrailerValue, kTrailerLF, kEndLF, kDone, kFailed,
  };
  // After the size or a whole extension: ';' starts an extension, CR ends the line.
  bool end_element(char c) {
    if (c == ';') {
      state_ = State::kExtName;
      ext_len_ = 0;
      return true;
    }
    if (c == '\r') {
      state_ = State::kSizeLF;
      return true;
    }
    return false;
  }
  BodyStep fail(std::size_t at, Error e) {
    state_ = State::kFailed;
    error_ = e;
    BodyStep s;
    s.consumed = at;
    s.error = e;
    return s;
  }

  std::uint64_t max_body_;
  std::uint32_t max_trailer_;
  State state_ = State::kSize;
  Error error_ = Error::kNone;
  std::uint32_t digits_ = 0;
  std::uint32_t ext_len_ = 0;  // bytes of the extension name or value being read
  std::uint32_t trailer_bytes_ = 0;
  std::uint64_t size_ = 0;       // the chunk size being read
  std::uint64_t remaining_ = 0;  // data bytes left in the current chunk
  std::uint64_t total_ = 0;      // data bytes so far
};

}  // namespace mnv::http
