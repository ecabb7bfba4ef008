// net/http/chars.h — RFC 9110 character classes as 256-entry tables, and ASCII case folding.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

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
