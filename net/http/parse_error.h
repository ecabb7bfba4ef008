// net/http/parse_error.h — why a message was rejected, and the HTTP status that answers it.
//
// Every bad-input outcome the parsers decide has its own code, so the server answers with the
// right status (and a log line naming what was wrong) and tests can tell the cases apart.
#pragma once

#include <cstdint>

namespace mnv::http {

enum class Error : std::uint8_t {
  kNone = 0,
  kBadRequestLine,          // 400: not `method SP target SP HTTP/d.d CRLF`
  kBadTarget,               // 400: a target in none of the four forms of RFC 9112 §3.2
  kBadStatusLine,           // (response) not `HTTP/d.d SP ddd [SP reason] CRLF`
  kBadHeader,               // 400: a header line that is not `token ":" OWS value OWS CRLF`
  kObsoleteLineFolding,     // 400: a header line starting with whitespace (obs-fold)
  kBadLineEnding,           // 400: LF without CR, or CR without LF
  kUnsupportedVersion,      // 505: HTTP/d.d other than 1.0 and 1.1
  kTargetTooLong,           // 414
  kHeadTooLarge,            // 431: head (or trailer section) over Limits::max_head
  kTooManyHeaders,          // 431: more than Limits::max_headers fields
  kBodyTooLarge,            // 413
  kBadContentLength,        // 400: not 1*DIGIT, or overflows
  kConflictingContentLength,  // 400: Content-Length fields that differ
  kContentLengthWithTransferEncoding,  // 400: both (request smuggling)
  kBadTransferEncoding,     // 400: chunked not last, or twice
  kTransferEncodingInHttp10,  // 400: RFC 9112 §6.1 (the framing of such a message is faulty)
  kUnsupportedTransferEncoding,  // 501: a coding other than chunked
  kBadChunk,                // 400: bad chunk-size line (size not hex or too big, bad extension, no CRLF)
  kBadChunkEnd,             // 400: chunk data not followed by CRLF
  kBadTrailer,              // 400: a malformed trailer field
  kMissingHost,             // 400: an HTTP/1.1 request without Host
  kDuplicateHost,           // 400: more than one Host
  kTruncated,               // the connection closed before the message ended
};

// The status a server answers with (400, 413, 414, 431, 501, 505); 0 for kNone.
int status_of(Error e);
// A short description, e.g. "Content-Length and Transfer-Encoding both present".
const char* describe(Error e);

}  // namespace mnv::http
