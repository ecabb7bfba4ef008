// net/http/fields.cc — header line parsing and the framing fields.
#include "net/http/fields.h"

#include <cstdint>
#include <string_view>

#include "net/http/chars.h"

namespace mnv::http {
namespace {

bool is_ows(char c) { return c == ' ' || c == '\t'; }

// Calls f(token) for each element of a comma-separated list (empty elements skipped); stops and
// returns false when f does.
template <typename F>
bool for_each_element(std::string_view v, F f) {
  std::size_t i = 0;
  while (i <= v.size()) {
    std::size_t comma = v.find(',', i);
    if (comma == std::string_view::npos) comma = v.size();
    std::size_t b = i, e = comma;
    while (b < e && is_ows(v[b])) ++b;
    while (e > b && is_ows(v[e - 1])) --e;
    if (e > b && !f(v.substr(b, e - b))) return false;
    i = comma + 1;
  }
  return true;
}

Error content_length(std::string_view v, FieldSummary& sum) {
  if (v.empty()) return Error::kBadContentLength;
  std::uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return Error::kBadContentLength;
    // Saturate: a length past 18 digits is over any body limit (413), not malformed.
    n = n > 99999999999999999ull ? UINT64_MAX : n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (sum.has_content_length && sum.content_length != n) return Error::kConflictingContentLength;
  sum.has_content_length = true;
  sum.content_length = n;
  return Error::kNone;
}

Error transfer_encoding(std::string_view v, FieldSummary& sum) {
  sum.has_transfer_encoding = true;
  bool ok = for_each_element(v, [&](std::string_view coding) {
    // A coding is a token, optionally with parameters (`gzip;q=1` is not chunked); any coding but
    // chunked, even a malformed one, is one we do not implement (501 when chunked is last).
    std::string_view name = coding.substr(0, coding.find(';'));
    while (!name.empty() && is_ows(name.back())) name.remove_suffix(1);
    if (chars::iequals(name, "chunked")) {
      if (name.size() != coding.size()) return false;  // chunked takes no parameters
      if (sum.chunked_seen) sum.chunked_twice = true;
      sum.chunked_seen = true;
      sum.chunked_last = true;
    } else {
      sum.chunked_last = false;
      sum.other_coding = true;
    }
    return true;
  });
  return ok ? Error::kNone : Error::kBadTransferEncoding;
}

void connection(std::string_view v, FieldSummary& sum) {
  for_each_element(v, [&](std::string_view option) {
    if (chars::iequals(option, "close")) sum.connection_close = true;
    if (chars::iequals(option, "keep-alive")) sum.connection_keep_alive = true;
    return true;
  });
}

// Reads a field that matters to framing or to the connection. Names are matched by length first.
Error classify(std::string_view name, std::string_view value, FieldSummary& sum) {
  switch (name.size()) {
    case 4:
      if (chars::iequals(name, "host") && sum.host_count < 255) ++sum.host_count;
      break;
    case 6:
      if (chars::iequals(name, "expect") && chars::iequals(value, "100-continue")) {
        sum.expect_continue = true;
      }
      break;
    case 10:
      if (chars::iequals(name, "connection")) connection(value, sum);
      break;
    case 14:
      if (chars::iequals(name, "content-length")) return content_length(value, sum);
      break;
    case 17:
      if (chars::iequals(name, "transfer-encoding")) return transfer_encoding(value, sum);
      break;
    default:
      break;
  }
  return Error::kNone;
}

}  // namespace

namespace {

Error parse_lines(const char* p, const char* end, std::uint32_t max_headers, HeaderList& list,
                  FieldSummary& sum, const char** at) {
  // The head ends with LF, so every scan below stops inside it.
  for (;;) {
    *at = p;
    if (*p == '\r') {
      if (p[1] != '\n') return Error::kBadLineEnding;
      return p + 2 == end ? Error::kNone : Error::kBadHeader;
    }
    if (*p == '\n') return Error::kBadLineEnding;
    if (is_ows(*p)) return Error::kObsoleteLineFolding;
    const char* name = p;
    while (chars::token(*p)) ++p;
    if (p == name || *p != ':') {
      *at = p;
      return Error::kBadHeader;
    }
    std::size_t name_len = static_cast<std::size_t>(p - name);
    ++p;
    while (is_ows(*p)) ++p;
    const char* value = p;
    p = chars::skip_field_value(p, end);
    *at = p;
    if (*p != '\r') return *p == '\n' ? Error::kBadLineEnding : Error::kBadHeader;
    if (p[1] != '\n') return Error::kBadLineEnding;
    const char* value_end = p;
    while (value_end > value && is_ows(value_end[-1])) --value_end;
    p += 2;
    if (list.size() >= max_headers) return Error::kTooManyHeaders;
    std::size_t value_len = static_cast<std::size_t>(value_end - value);
    list.add(name, name_len, value, value_len);
    Error e = classify(std::string_view(name, name_len), std::string_view(value, value_len), sum);
    if (e != Error::kNone) {
      *at = value;
      return e;
    }
  }
}

}  // namespace

Error parse_fields(const char* base, const char* p, const char* end, std::uint32_t max_headers,
                   HeaderList& list, FieldSummary& sum, std::size_t* offset) {
  list.reset(base);
  const char* at = p;
  Error e = parse_lines(p, end, max_headers, list, sum, &at);
  *offset = static_cast<std::size_t>(at - base);
  return e;
}

}  // namespace mnv::http
