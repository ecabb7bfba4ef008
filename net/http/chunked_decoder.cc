// net/http/chunked_decoder.cc — the chunked framing state machine.
#include "net/http/chunked_decoder.h"

#include "net/http/chars.h"

namespace mnv::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

BodyStep ChunkedDecoder::step(const ByteSpans& in) {
  if (state_ == State::kFailed) return fail(0, error_);
  std::size_t i = 0;
  const std::size_t n = in.size();
  while (i < n) {
    if (state_ == State::kData) {
      std::string_view run = in.run(i);
      std::size_t k = remaining_ < run.size() ? static_cast<std::size_t>(remaining_) : run.size();
      remaining_ -= k;
      if (remaining_ == 0) state_ = State::kDataCR;
      BodyStep s;
      s.consumed = i + k;
      s.data = run.substr(0, k);
      return s;
    }
    char c = in[i];
    if (state_ >= State::kTrailerStart && state_ <= State::kEndLF && ++trailer_bytes_ > max_trailer_) {
      return fail(i, Error::kHeadTooLarge);
    }
    switch (state_) {
      case State::kSize: {
        int v = hex_value(c);
        if (v >= 0) {
          if ((size_ >> 60) != 0) return fail(i, Error::kBadChunk);  // would overflow 64 bits
          size_ = size_ * 16 + static_cast<std::uint64_t>(v);
          ++digits_;
        } else if (digits_ == 0 || !end_element(c)) {
          return fail(i, Error::kBadChunk);
        }
        break;
      }
      // chunk-ext = *( ";" ext-name [ "=" ext-val ] ), ext-val = token / quoted-string
      case State::kExtName:
        if (chars::token(c)) {
          ++ext_len_;
        } else if (ext_len_ > 0 && c == '=') {
          state_ = State::kExtValue;
          ext_len_ = 0;
        } else if (ext_len_ == 0 || !end_element(c)) {
          return fail(i, Error::kBadChunk);
        }
        break;
      case State::kExtValue:
        if (c == '"' && ext_len_ == 0) {
          state_ = State::kExtQuoted;
        } else if (chars::token(c)) {
          ++ext_len_;
        } else if (ext_len_ == 0 || !end_element(c)) {
          return fail(i, Error::kBadChunk);
        }
        break;
      case State::kExtQuoted:
        if (c == '"') {
          state_ = State::kExtAfterQuoted;
        } else if (c == '\\') {
          state_ = State::kExtQuotedEscape;
        } else if (!chars::field_value(c)) {
          return fail(i, Error::kBadChunk);
        }
        break;
      case State::kExtQuotedEscape:
        if (!chars::field_value(c)) return fail(i, Error::kBadChunk);
        state_ = State::kExtQuoted;
        break;
      case State::kExtAfterQuoted:
        if (!end_element(c)) return fail(i, Error::kBadChunk);
        break;
      case State::kSizeLF:
        if (c != '\n') return fail(i, Error::kBadChunk);
        digits_ = 0;
        if (size_ == 0) {
          state_ = State::kTrailerStart;
        } else {
          if (size_ > max_body_ - total_) return fail(i, Error::kBodyTooLarge);
          total_ += size_;
          remaining_ = size_;
          size_ = 0;
          state_ = State::kData;
        }
        break;
      case State::kDataCR:
        if (c != '\r') return fail(i, Error::kBadChunkEnd);
        state_ = State::kDataLF;
        break;
      case State::kDataLF:
        if (c != '\n') return fail(i, Error::kBadChunkEnd);
        state_ = State::kSize;
        break;
      case State::kTrailerStart:
        if (c == '\r') {
          state_ = State::kEndLF;
        } else if (chars::token(c)) {
          state_ = State::kTrailerName;
        } else {
          return fail(i, Error::kBadTrailer);
        }
        break;
      case State::kTrailerName:
        if (c == ':') {
          state_ = State::kTrailerValue;
        } else if (!chars::token(c)) {
          return fail(i, Error::kBadTrailer);
        }
        break;
      case State::kTrailerValue:
        if (c == '\r') {
          state_ = State::kTrailerLF;
        } else if (!chars::field_value(c)) {
          return fail(i, Error::kBadTrailer);
        }
        break;
      case State::kTrailerLF:
        if (c != '\n') return fail(i, Error::kBadTrailer);
        state_ = State::kTrailerStart;
        break;
      case State::kEndLF: {
        if (c != '\n') return fail(i, Error::kBadTrailer);
        state_ = State::kDone;
        BodyStep s;
        s.consumed = i + 1;
        s.done = true;
        return s;
      }
      case State::kDone: {
        BodyStep s;
        s.done = true;
        return s;
      }
      case State::kData:
      case State::kFailed:
        break;  // handled above
    }
    ++i;
  }
  BodyStep s;
  s.consumed = i;
  s.done = state_ == State::kDone;
  return s;
}

}  // namespace mnv::http
