// apps/rtb/money.cc — exact decimal <-> micro-unit conversions (see money.h).
#include "apps/rtb/money.h"

#include <cassert>

namespace mnv::rtb {

bool parse_decimal_micros(std::string_view s, Micros* out) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  if (i < n && s[i] == '-') {
    // "-0" and "-0.0" are zero; any other negative is refused.
    ++i;
    for (std::size_t j = i; j < n; ++j) {
      char c = s[j];
      if (c >= '1' && c <= '9') return false;
      if (c == 'e' || c == 'E') break;
    }
  }
  // Digits of the mantissa, with the position of the decimal point: value = digits * 10^(exp).
  // Only the first 19 significant digits are kept; past them, digits just move the exponent
  // (and a non-zero dropped digit rounds up).
  unsigned long long mant = 0;
  int exp10 = 0;
  int kept = 0;
  bool any_digit = false, dropped_nonzero = false;
  for (; i < n && s[i] >= '0' && s[i] <= '9'; ++i) {
    any_digit = true;
    if (kept < 18) {
      mant = mant * 10 + static_cast<unsigned>(s[i] - '0');
      if (mant != 0) ++kept;
    } else {
      ++exp10;
      dropped_nonzero |= s[i] != '0';
    }
  }
  if (i < n && s[i] == '.') {
    ++i;
    bool frac_digit = false;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; ++i) {
      frac_digit = true;
      if (kept < 18) {
        mant = mant * 10 + static_cast<unsigned>(s[i] - '0');
        if (mant != 0) ++kept;
        --exp10;
      } else {
        dropped_nonzero |= s[i] != '0';
      }
    }
    if (!frac_digit) return false;
  }
  if (!any_digit) return false;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i >= n || s[i] < '0' || s[i] > '9') return false;
    int e = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; ++i) {
      if (e < 10000) e = e * 10 + (s[i] - '0');
    }
    exp10 += neg ? -e : e;
  }
  if (i != n) return false;
  // micros = mant * 10^(exp10 + 6), rounded up.
  int shift = exp10 + 6;
  if (mant == 0) {
    *out = dropped_nonzero ? 1 : 0;
    return true;
  }
  if (shift >= 0) {
    unsigned long long v = mant;
    for (int k = 0; k < shift; ++k) {
      if (v > static_cast<unsigned long long>(kMaxCpmMicros)) return false;
      v *= 10;
    }
    if (v > static_cast<unsigned long long>(kMaxCpmMicros)) return false;
    if (dropped_nonzero) ++v;
    *out = static_cast<Micros>(v);
    return true;
  }
  unsigned long long v = mant;
  bool rem = dropped_nonzero;
  for (int k = 0; k < -shift && v != 0; ++k) {
    rem |= v % 10 != 0;
    v /= 10;
  }
  if (rem) ++v;
  if (v > static_cast<unsigned long long>(kMaxCpmMicros)) return false;
  *out = static_cast<Micros>(v);
  return true;
}

std::size_t format_decimal_micros(Micros micros, char* out, std::size_t cap) {
  assert(micros >= 0 && micros <= kMaxCpmMicros);
  char tmp[32];
  std::size_t len = 0;
  Micros whole = micros / kMicrosPerUnit;
  Micros frac = micros % kMicrosPerUnit;
  char digits[24];
  int nd = 0;
  do {
    digits[nd++] = static_cast<char>('0' + whole % 10);
    whole /= 10;
  } while (whole != 0);
  while (nd > 0) tmp[len++] = digits[--nd];
  if (frac != 0) {
    tmp[len++] = '.';
    char f[6];
    for (int k = 5; k >= 0; --k) {
      f[k] = static_cast<char>('0' + frac % 10);
      frac /= 10;
    }
    int last = 5;
    while (f[last] == '0') --last;
    for (int k = 0; k <= last; ++k) tmp[len++] = f[k];
  }
  if (len > cap) return 0;
  for (std::size_t k = 0; k < len; ++k) out[k] = tmp[k];
  return len;
}

Micros convert_micros(Micros amount, Micros micros_per_unit) {
  assert(amount >= 0 && micros_per_unit >= 0);
  // amount * rate / 1e6, rounded up, in 128 bits so a large floor cannot overflow.
  __int128 p = static_cast<__int128>(amount) * micros_per_unit;
  __int128 q = (p + kMicrosPerUnit - 1) / kMicrosPerUnit;
  if (q > kMaxCpmMicros) return kMaxCpmMicros;
  return static_cast<Micros>(q);
}

}  // namespace mnv::rtb
