// net/http/chars.h — RFC 9110 character classes as 256-entry tables, and ASCII case folding.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mnv::http::chars {

constexpr bool tchar_of(unsigned c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

constexpr bool field_value_of(unsigned c) { return c == '\t' || (c >= 0x20 && c != 0x7F); }
constexpr bool target_of(unsigned c) { return c > 0x20 && c != 0x7F; }

template <bool (*F)(unsigned)>
constexpr std::array<bool, 256> table() {
  std::array<bool, 256> t{};
  for (unsigned c = 0; c < 256; ++c) t[c] = F(c);
  return t;
}

// token characters (method, header names, transfer codings).
inline constexpr std::array<bool, 256> kToken = table<tchar_of>();
// field-value bytes: VCHAR, SP, HTAB and obs-text (>= 0x80); no other controls, no DEL.
inline constexpr std::array<bool, 256> kFieldValue = table<field_value_of>();
// request-target bytes: visible ASCII and, like llhttp and nginx, raw bytes >= 0x80 (UTF-8 paths);
// no space, controls or DEL.
inline constexpr std::array<bool, 256> kTarget = table<target_of>();

inline bool token(char c) { return kToken[static_cast<unsigned char>(c)]; }
inline bool field_value(char c) { return kFieldValue[static_cast<unsigned char>(c)]; }
inline bool target(char c) { return kTarget[static_cast<unsigned char>(c)]; }

// Skips the run of field-value bytes (or of target bytes) at p, stopping at end or at the first
// byte outside the class. 16 bytes at a time with SSE2 while every byte is printable, then byte
// by byte (HTAB and the stopping byte).
inline const char* skip_field_value(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i space = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7F);
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i ok = _mm_andnot_si128(_mm_cmpeq_epi8(v, del), _mm_cmpeq_epi8(_mm_max_epu8(v, space), v));
    unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(ok));
    if (mask != 0xFFFF) {
      p += __builtin_ctz(~mask);
      break;
    }
    p += 16;
  }
#endif
  while (p < end && field_value(*p)) ++p;
  return p;
}

inline const char* skip_target(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i bang = _mm_set1_epi8(0x21), del = _mm_set1_epi8(0x7F);
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i ok = _mm_andnot_si128(_mm_cmpeq_epi8(v, del), _mm_cmpeq_epi8(_mm_max_epu8(v, bang), v));
    unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(ok));
    if (mask != 0xFFFF) return p + __builtin_ctz(~mask);
    p += 16;
  }
#endif
  while (p < end && target(*p)) ++p;
  return p;
}

inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c; }

// Case-insensitive equality; `lower_literal` is already lower case.
inline bool iequals(std::string_view s, std::string_view lower_literal) {
  if (s.size() != lower_literal.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (lower(s[i]) != lower_literal[i]) return false;
  }
  return true;
}

}  // namespace mnv::http::chars
