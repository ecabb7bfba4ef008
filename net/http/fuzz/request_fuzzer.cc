// net/http/fuzz/request_fuzzer.cc — libFuzzer target for the request parser.
//
// For every input: (1) our parser must give the same messages and the same error whether the
// bytes arrive whole, one at a time, split at an input-chosen byte, or across a ring's wrap at an
// input-chosen offset; (2) llhttp, run over the same bytes, must agree: the same messages
// (method, target, version, headers, body, keep-alive) and a reject at the same message, except
// where the two differ on purpose (kept to the list in explained_difference()). A disagreement
// prints both sides and aborts, which libFuzzer reports as a crash with the input saved.
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "net/http/chars.h"
#include "net/http/fuzz/llhttp_oracle.h"
#include "net/http/request_parser.h"
#include "net/http/test_driver.h"

namespace mnv::http::fuzz {
namespace {

using testing::DriveOptions;
using testing::Message;
using testing::Outcome;

DriveOptions options() {
  DriveOptions opt;
  opt.limits.max_target = 2048;
  opt.limits.max_head = 4096;
  opt.limits.max_headers = 64;
  opt.limits.max_body = 1 << 16;
  opt.ring_capacity = 4096 + 64;  // holds the largest head: a head's size decides nothing here
  return opt;
}

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

void print_message(const char* who, const Message& m) {
  std::fprintf(stderr, "  %s: %s %s 1.%d keep_alive=%d body=%zu[%s]\n", who, printable(m.method).c_str(),
               printable(m.target).c_str(), m.version_minor, m.keep_alive, m.body.size(),
               printable(m.body).c_str());
  for (const auto& [n, v] : m.headers) {
    std::fprintf(stderr, "    %s: [%s]\n", printable(n).c_str(), printable(v).c_str());
  }
}

[[noreturn]] void mismatch(const char* what, std::string_view in, const Outcome& ours,
                           const OracleOutcome* theirs) {
  std::fprintf(stderr, "MISMATCH: %s\ninput (%zu bytes): %s\n", what, in.size(), printable(in).c_str());
  std::fprintf(stderr, "ours: %zu messages, error %d (%s) at byte %zu, partial=%d\n", ours.messages.size(),
               static_cast<int>(ours.error), describe(ours.error), ours.error_at, ours.partial);
  for (const Message& m : ours.messages) print_message("ours", m);
  if (theirs != nullptr) {
    std::fprintf(stderr, "llhttp: %zu messages, error %s (%s), partial=%d upgrade=%d\n",
                 theirs->messages.size(), llhttp_errno_name(theirs->error), theirs->reason.c_str(),
                 theirs->partial, theirs->upgrade);
    for (const Message& m : theirs->messages) print_message("llhttp", m);
  }
  std::abort();
}

std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

bool same_message(const Message& a, const Message& b, bool compare_keep_alive = true) {
  if (a.method != b.method || a.target != b.target || a.body != b.body) return false;
  if (a.version_minor != (b.version_minor == 0 ? 0 : 1)) return false;
  if (compare_keep_alive && a.keep_alive != b.keep_alive) return false;
  if (a.headers.size() != b.headers.size()) return false;
  for (std::size_t i = 0; i < a.headers.size(); ++i) {
    if (a.headers[i].first != b.headers[i].first) return false;
    if (trim_ows(a.headers[i].second) != trim_ows(b.headers[i].second)) return false;
  }
  return true;
}

bool has_close_option(const Message& m) {
  for (const auto& [name, value] : m.headers) {
    if (!chars::iequals(name, "connection")) continue;
    std::string_view v = value;
    for (std::size_t i = 0; i <= v.size();) {
      std::size_t comma = v.find(',', i);
      if (comma == std::string_view::npos) comma = v.size();
      if (chars::iequals(trim_ows(v.substr(i, comma - i)), "close")) return true;
      i = comma + 1;
    }
  }
  return false;
}

bool llhttp_knows_method(std::string_view m) {
  // The HTTP methods of llhttp's map (its RTSP ones it refuses in an HTTP/1.x request).
#define MNV_LLHTTP_METHOD(num, name, string) \
  if (m == #string) return true;
  HTTP_METHOD_MAP(MNV_LLHTTP_METHOD)
#undef MNV_LLHTTP_METHOD
  return false;
}

// Whether some header line has an empty name, or whitespace in or after its name before the colon
// (RFC 9112 §5.1: a server MUST reject it; llhttp 8 takes "Host O: x" as a field named "Host O",
// and ": x" as one named "").
bool loose_field_name(std::string_view in) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\n') continue;
    if (i + 1 < in.size() && in[i + 1] == ':') return true;
    std::size_t j = i + 1;
    while (j < in.size() && chars::token(in[j])) ++j;
    if (j == i + 1 || j == in.size() || (in[j] != ' ' && in[j] != '\t')) continue;
    std::size_t eol = in.find('\n', j);
    if (in.substr(j, eol == std::string_view::npos ? std::string_view::npos : eol - j).find(':') !=
        std::string_view::npos) {
      return true;
    }
  }
  return false;
}

// Whether a CR without LF after it, or an LF without CR before it, occurs.
bool bare_cr_or_lf(std::string_view in) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\r' && (i + 1 == in.size() || in[i + 1] != '\n')) return true;
    if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r')) return true;
  }
  return false;
}

// Whether a line that names an HTTP version has two spaces in a row (llhttp 8 skips extra spaces
// between the request line's words; we take the single SP of RFC 9112 §3).
bool loose_request_line(std::string_view in) {
  std::size_t start = 0;
  while (start < in.size()) {
    std::size_t end = in.find('\n', start);
    if (end == std::string_view::npos) end = in.size();
    std::string_view line = in.substr(start, end - start);
    if (line.find("HTTP/") != std::string_view::npos && line.find("  ") != std::string_view::npos) return true;
    start = end + 1;
  }
  return false;
}

// The line (with its LF) holding the byte where we found our error.
std::string_view error_line(std::string_view in, const Outcome& ours) {
  std::size_t at = ours.error_at < in.size() ? ours.error_at : in.size();
  std::size_t start = at;
  while (start > 0 && in[start - 1] != '\n') --start;
  std::size_t end = in.find('\n', at);
  return in.substr(start, end == std::string_view::npos ? std::string_view::npos : end + 1 - start);
}

// Whether a Transfer-Encoding field has no coding at all (llhttp 8 then frames the request as if
// it had none; we refuse it: a proxy may read it otherwise).
bool empty_transfer_encoding(std::string_view in) {
  const std::string_view name = "\ntransfer-encoding:";
  for (std::size_t i = 0; i + name.size() <= in.size(); ++i) {
    if (!chars::iequals(in.substr(i, name.size()), name)) continue;
    bool empty = true;
    for (std::size_t j = i + name.size(); j < in.size() && in[j] != '\r' && in[j] != '\n'; ++j) {
      if (in[j] != ' ' && in[j] != '\t' && in[j] != ',') empty = false;
    }
    if (empty) return true;
  }
  return false;
}

// How many Transfer-Encoding field lines the input has (by name, at a line start).
int transfer_encoding_lines(std::string_view in) {
  const std::string_view name = "\ntransfer-encoding:";
  int n = 0;
  for (std::size_t i = 0; i + name.size() <= in.size(); ++i) {
    if (chars::iequals(in.substr(i, name.size()), name)) ++n;
  }
  return n;
}

// Whether some line starts with a hex chunk size followed by ';' (a chunk extension).
bool chunk_extension(std::string_view in) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (i > 0 && in[i - 1] != '\n') continue;
    std::size_t j = i;
    while (j < in.size() && std::isxdigit(static_cast<unsigned char>(in[j]))) ++j;
    if (j > i && j < in.size() && in[j] == ';') return true;
  }
  return false;
}

// The differences on purpose (see request_parser.h): where one of these decides the message
// after the common ones, the rest of the stream is not compared.
bool explained_difference(std::string_view in, const Outcome& ours, const OracleOutcome& theirs) {
  switch (ours.error) {
    case Error::kMissingHost:        // RFC 9112 §3.2: a server MUST reject; llhttp does not look
    case Error::kDuplicateHost:
    case Error::kTargetTooLong:      // llhttp has no size limits
    case Error::kHeadTooLarge:
    case Error::kTooManyHeaders:
    case Error::kBodyTooLarge:
    case Error::kUnsupportedTransferEncoding:  // 501: we decode chunked only; llhttp passes gzip through
    case Error::kUnsupportedVersion:  // 505 for HTTP/2.0 and 0.9: llhttp parses them as 1.x
    case Error::kObsoleteLineFolding:  // RFC 9112 §5.2 lets a server reject obs-fold; llhttp 8 unfolds
    case Error::kTransferEncodingInHttp10:  // RFC 9112 §6.1; llhttp decodes the chunks
    case Error::kBadLineEnding:  // we take CRLF only; llhttp 8 also ends lines at a bare LF or CR
      return true;
    default:
      break;
  }
  if ((ours.error == Error::kBadHeader || ours.error == Error::kBadTrailer) && loose_field_name(in)) return true;
  if (theirs.upgrade) return true;
  // We refused a byte on the stream's last, unfinished line, where llhttp is still undecided.
  if (ours.error != Error::kNone && theirs.error == HPE_OK && theirs.partial &&
      theirs.messages.size() == ours.messages.size() &&
      in.find('\n', ours.error_at) == std::string_view::npos) {
    return true;
  }
  // llhttp 8 unfolds obs-fold; a folded field may fail our checks before the fold is seen
  // (e.g. "Content-Length:" CRLF SP "2" is an empty Content-Length to us).
  if (ours.error != Error::kNone && (in.find("\r\n ") != std::string_view::npos ||
                                     in.find("\r\n\t") != std::string_view::npos)) {
    return true;
  }
  // llhttp takes "*" followed by more as a target; the asterisk-form is "*" alone (RFC 9112 §3.2.4).
  if (ours.error == Error::kBadTarget && ours.error_at < in.size() && in[ours.error_at] == '*') return true;
  if (ours.error == Error::kBadTransferEncoding && empty_transfer_encoding(in)) return true;
  // llhttp 8 frames by the last Transfer-Encoding field line alone when the earlier ones did not
  // end in chunked ("TE: chunked x" then "TE: chunked" is chunked to it); we read all the field
  // lines as one list (RFC 9110 §5.3), where chunked then stands twice or not last: 400.
  if (ours.error == Error::kBadTransferEncoding && transfer_encoding_lines(in) >= 2) return true;
  // llhttp 8 forgets a Transfer-Encoding field with an empty value and frames by Content-Length;
  // we refuse any request that carries both fields (RFC 9112 §6.1: no request smuggling).
  if (ours.error == Error::kContentLengthWithTransferEncoding && empty_transfer_encoding(in)) return true;
  if (ours.error == Error::kBadRequestLine && loose_request_line(in)) return true;
  // llhttp 8 lets HTAB (and some other controls) into a target; RFC 3986 does not.
  if (ours.error == Error::kBadRequestLine && ours.error_at < in.size() &&
      (static_cast<unsigned char>(in[ours.error_at]) < 0x20 || in[ours.error_at] == 0x7F) &&
      in[ours.error_at] != '\r' && in[ours.error_at] != '\n') {
    return true;
  }
  // llhttp 8 ends a line at a bare CR or LF where we wait for (or insist on) CRLF.
  if (ours.partial && ours.error == Error::kNone && bare_cr_or_lf(in)) return true;
  if ((ours.error == Error::kBadChunk || ours.error == Error::kBadChunkEnd || ours.error == Error::kBadTrailer) &&
      bare_cr_or_lf(in)) {
    return true;  // (chunk lines too)
  }
  // llhttp 8.1 does not check the CRLF after chunk data (a request-smuggling hole later llhttp
  // closed); we refuse the request.
  if (ours.error == Error::kBadChunkEnd) return true;
  if ((ours.error == Error::kBadRequestLine || ours.error == Error::kBadHeader) &&
      bare_cr_or_lf(error_line(in, ours))) {
    return true;
  }
  // `GET /path CRLF` is an HTTP/0.9 request to llhttp; we answer 400 (RFC 9112 has no 0.9).
  if (ours.error == Error::kBadRequestLine && error_line(in, ours).find(" HTTP/") == std::string_view::npos) {
    return true;
  }  // llhttp hands the connection over after Upgrade/CONNECT
  std::size_t n = theirs.messages.size();
  if (theirs.error == HPE_INVALID_METHOD || theirs.error == HPE_INVALID_CONSTANT) {
    // We accept any token method (the router answers 405/501); llhttp knows a fixed list.
    if (ours.messages.size() > n && !llhttp_knows_method(ours.messages[n].method)) return true;
  }
  if (theirs.error == HPE_UNEXPECTED_CONTENT_LENGTH && theirs.reason == "Duplicate Content-Length") {
    // RFC 9112 §6.3 (5) lets a recipient accept identical duplicates; differing ones we reject.
    if (ours.messages.size() > n) return true;
  }
  if ((theirs.error == HPE_INVALID_TRANSFER_ENCODING || theirs.error == HPE_UNEXPECTED_CONTENT_LENGTH ||
       theirs.error == HPE_INVALID_CONTENT_LENGTH) &&
      ours.messages.size() > n && ours.messages[n].framing == Framing::kChunked) {
    return true;  // llhttp reads framing fields in a chunked trailer; trailers frame nothing to us
  }
  // llhttp also checks an authority's structure ("a@@b", a port's digits); we check its
  // characters only, and leave the rest to whoever routes on it.
  if (theirs.error == HPE_INVALID_URL && ours.messages.size() > n && ours.messages[n].target[0] != '/') {
    return true;
  }
  // Chunk extensions: llhttp 8.1 parses them inconsistently after a value ("5;a=b;c" reads on as
  // chunk size; "5;;" CRLF fails but "5;a=b;" CRLF passes). Both sides ignore extensions; we
  // take the list as RFC 9112 §7.1.1 has it, and do not follow llhttp here.
  if ((ours.error == Error::kBadChunk || theirs.error == HPE_STRICT || theirs.error == HPE_INVALID_CHUNK_SIZE) &&
      chunk_extension(in)) {
    return true;
  }
  return false;
}

void check_against_llhttp(std::string_view in, const Outcome& ours) {
  OracleOutcome theirs = run_llhttp(in);
  std::size_t common = std::min(ours.messages.size(), theirs.messages.size());
  for (std::size_t i = 0; i < common; ++i) {
    if (!same_message(ours.messages[i], theirs.messages[i])) {
      if (theirs.upgrade && i + 1 == theirs.messages.size()) return;
      // A Connection list with a close option among odd bytes: llhttp 8 may stop reading the
      // list and miss it; we close (and so compare nothing after it).
      if (!ours.messages[i].keep_alive && same_message(ours.messages[i], theirs.messages[i], false) &&
          has_close_option(ours.messages[i])) {
        return;
      }
      mismatch("a message differs", in, ours, &theirs);
    }
  }
  // After a message that closes the connection, what follows is never read.
  if (common > 0 && !ours.messages[common - 1].keep_alive) return;
  if (explained_difference(in, ours, theirs)) return;
  bool ours_rejects = ours.error != Error::kNone;
  bool theirs_rejects = theirs.error != HPE_OK;
  if (ours.messages.size() == theirs.messages.size()) {
    if (ours_rejects == theirs_rejects) return;
    // One side decides later: we judge a head once it is complete, llhttp byte by byte.
    if (theirs_rejects && ours.partial) return;
    mismatch(ours_rejects ? "we reject, llhttp accepts" : "llhttp rejects, we accept", in, ours, &theirs);
  }
  // One side completed more messages than the other.
  if (ours.messages.size() < theirs.messages.size()) {
    if (ours.partial && !ours_rejects) mismatch("llhttp completed a message we did not", in, ours, &theirs);
    mismatch("we reject a message llhttp accepts", in, ours, &theirs);
  }
  mismatch("llhttp rejects a message we accept", in, ours, &theirs);
}

}  // namespace
}  // namespace mnv::http::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mnv::http;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  testing::DriveOptions opt = fuzz::options();
  testing::Outcome whole = testing::drive<RequestParser>(in, testing::whole(), opt);
  // (1) the same however the bytes arrive
  if (testing::drive<RequestParser>(in, testing::bytewise(), opt) != whole) {
    fuzz::mismatch("byte by byte differs from whole", in, whole, nullptr);
  }
  std::size_t seed = 0;
  for (std::size_t i = 0; i < size; ++i) seed = seed * 31 + data[i];
  if (size > 1 && testing::drive<RequestParser>(in, testing::split_at(seed % (size - 1) + 1), opt) != whole) {
    fuzz::mismatch("split differs from whole", in, whole, nullptr);
  }
  testing::DriveOptions wrap = opt;
  wrap.ring_start = seed % wrap.ring_capacity;
  if (testing::drive<RequestParser>(in, testing::whole(), wrap) != whole) {
    fuzz::mismatch("across the ring's wrap differs from whole", in, whole, nullptr);
  }
  // (2) the same as llhttp
  fuzz::check_against_llhttp(in, whole);
  return 0;
}
