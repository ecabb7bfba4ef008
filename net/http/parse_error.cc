// net/http/parse_error.cc — statuses and descriptions of the parsers' errors.
#include "net/http/parse_error.h"

namespace mnv::http {

int status_of(Error e) {
  switch (e) {
    case Error::kNone: return 0;
    case Error::kUnsupportedVersion: return 505;
    case Error::kTargetTooLong: return 414;
    case Error::kHeadTooLarge:
    case Error::kTooManyHeaders: return 431;
    case Error::kBodyTooLarge: return 413;
    case Error::kUnsupportedTransferEncoding: return 501;
    default: return 400;
  }
}

const char* describe(Error e) {
  switch (e) {
    case Error::kNone: return "no error";
    case Error::kBadRequestLine: return "malformed request line (want: METHOD SP target SP HTTP/1.x CRLF)";
    case Error::kBadTarget: return "request target is not /path, scheme://authority/path, host:port (CONNECT) or *";
    case Error::kBadStatusLine: return "malformed status line (want: HTTP/1.x SP 3-digit status SP reason CRLF)";
    case Error::kBadHeader: return "malformed header field (want: token \":\" value CRLF, no controls)";
    case Error::kObsoleteLineFolding: return "header line folded onto a continuation line (obs-fold)";
    case Error::kBadLineEnding: return "line ending is not CRLF";
    case Error::kUnsupportedVersion: return "HTTP version other than 1.0 and 1.1";
    case Error::kTargetTooLong: return "request target longer than http.max_target";
    case Error::kHeadTooLarge: return "header section longer than http.max_head";
    case Error::kTooManyHeaders: return "more header fields than http.max_headers";
    case Error::kBodyTooLarge: return "body longer than http.max_body";
    case Error::kBadContentLength: return "Content-Length is not a decimal number that fits 63 bits";
    case Error::kConflictingContentLength: return "Content-Length fields disagree";
    case Error::kContentLengthWithTransferEncoding: return "Content-Length and Transfer-Encoding both present";
    case Error::kBadTransferEncoding: return "Transfer-Encoding without chunked last, or chunked twice";
    case Error::kTransferEncodingInHttp10: return "Transfer-Encoding in an HTTP/1.0 request";
    case Error::kUnsupportedTransferEncoding: return "Transfer-Encoding coding other than chunked";
    case Error::kBadChunk: return "malformed chunk-size line (want: hex size [;ext[=value]] CRLF)";
    case Error::kBadChunkEnd: return "chunk data not followed by CRLF (data longer than its size?)";
    case Error::kBadTrailer: return "malformed trailer field (want: token \":\" value CRLF)";
    case Error::kMissingHost: return "HTTP/1.1 request without Host";
    case Error::kDuplicateHost: return "more than one Host field";
    case Error::kTruncated: return "connection closed before the message ended";
  }
  return "unknown error";
}

}  // namespace mnv::http
