// net/http/head_scanner.h — finds where a message's head ends, resuming where it stopped.
//
// Bytes may arrive one at a time; the scanner remembers how far it has looked, so each byte is
// examined once however the head is split (16 bytes at a time for LF, SSE2). Empty lines
// before the start line are skipped (RFC 9112 §2.2). The parsers then parse the complete head
// in one pass.
#pragma once

#include <cstddef>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "net/byte_spans.h"

namespace mnv::http {

class HeadScanner {
 public:
  enum class Result { kMore, kComplete, kTooLarge };

  // `in` holds the message from its first byte. kTooLarge: no end within `limit` bytes.
  Result scan(const ByteSpans& in, std::size_t limit) {
    if (end_ != 0) return Result::kComplete;
    std::size_t stop = in.size() < limit ? in.size() : limit;
    while (pos_ < stop) {
      std::string_view run = in.run(pos_);
      if (run.size() > stop - pos_) run = run.substr(0, stop - pos_);
      std::size_t base = pos_;
      std::size_t k = 0;
      while (k < run.size()) {
        std::size_t nl = next_lf(run, k);
        if (nl == run.size()) break;
        if (at_lf(in, base + nl)) {
          pos_ = base + nl + 1;
          return Result::kComplete;
        }
        k = nl + 1;
      }
      pos_ = base + run.size();
    }
    return in.size() >= limit ? Result::kTooLarge : Result::kMore;
  }

  // The index of the first LF in run at or after k; run.size() if none.
  static std::size_t next_lf(std::string_view run, std::size_t k) {
#if defined(__SSE2__)
    const __m128i lf = _mm_set1_epi8('\n');
    while (run.size() - k >= 16) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(run.data() + k));
      unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf)));
      if (mask != 0) return k + static_cast<std::size_t>(__builtin_ctz(mask));
      k += 16;
    }
#endif
    const void* nl = std::memchr(run.data() + k, '\n', run.size() - k);
    return nl == nullptr ? run.size() : static_cast<std::size_t>(static_cast<const char*>(nl) - run.data());
  }

  // Notes the LF at stream offset i (ending a line); true when it ends the head.
  bool at_lf(const ByteSpans& in, std::size_t i) {
    std::size_t len = i - line_start_;
    bool empty = len == 0 || (len == 1 && in[i - 1] == '\r');
    line_start_ = i + 1;
    if (line_end_ == 0) {
      if (empty) {
        start_ = i + 1;  // an empty line before the start line
      } else {
        line_end_ = i + 1;
      }
      return false;
    }
    if (!empty) return false;
    end_ = i + 1;
    return true;
  }

  // The start line's first byte (after skipped empty lines).
  std::size_t start() const { return start_; }
  // One past the LF ending the start line; 0 until it is seen.
  std::size_t line_end() const { return line_end_; }
  // One past the head's last LF; 0 until the head is complete.
  std::size_t end() const { return end_; }

 private:
  std::size_t pos_ = 0;         // next byte to look at
  std::size_t line_start_ = 0;  // first byte of the line being scanned
  std::size_t start_ = 0;
  std::size_t line_end_ = 0;
  std::size_t end_ = 0;
};

}  // namespace mnv::http
