// shard/cpuset.cc — CpuSet bit operations and the cpuset(7) list parser and formatter.
#include "shard/cpuset.h"

#include <bit>
#include <cstdio>

namespace mnv {

bool CpuSet::add(int cpu) {
  if (cpu < 0 || cpu >= kMaxCpus) return false;
  words_[cpu / 64] |= std::uint64_t{1} << (cpu % 64);
  return true;
}

void CpuSet::remove(int cpu) {
  if (cpu < 0 || cpu >= kMaxCpus) return;
  words_[cpu / 64] &= ~(std::uint64_t{1} << (cpu % 64));
}

bool CpuSet::contains(int cpu) const {
  if (cpu < 0 || cpu >= kMaxCpus) return false;
  return (words_[cpu / 64] >> (cpu % 64)) & 1;
}

int CpuSet::count() const {
  int n = 0;
  for (std::uint64_t w : words_) n += std::popcount(w);
  return n;
}

bool CpuSet::empty() const {
  for (std::uint64_t w : words_) {
    if (w != 0) return false;
  }
  return true;
}

int CpuSet::first() const { return next(-1); }

int CpuSet::next(int cpu) const {
  int from = cpu + 1;
  if (from < 0) from = 0;
  if (from >= kMaxCpus) return -1;
  int word = from / 64;
  // Bits below `from` in its word are masked off; later words are taken whole.
  std::uint64_t w = words_[word] & (~std::uint64_t{0} << (from % 64));
  while (true) {
    if (w != 0) return word * 64 + std::countr_zero(w);
    if (++word == kWords) return -1;
    w = words_[word];
  }
}

std::vector<int> CpuSet::to_vector() const {
  std::vector<int> out;
  out.reserve(static_cast<std::size_t>(count()));
  for (int cpu : *this) out.push_back(cpu);
  return out;
}

CpuSet CpuSet::operator&(const CpuSet& other) const {
  CpuSet r;
  for (int i = 0; i < kWords; i++) r.words_[i] = words_[i] & other.words_[i];
  return r;
}

CpuSet CpuSet::operator|(const CpuSet& other) const {
  CpuSet r;
  for (int i = 0; i < kWords; i++) r.words_[i] = words_[i] | other.words_[i];
  return r;
}

CpuSet CpuSet::operator-(const CpuSet& other) const {
  CpuSet r;
  for (int i = 0; i < kWords; i++) r.words_[i] = words_[i] & ~other.words_[i];
  return r;
}

bool CpuSet::subset_of(const CpuSet& other) const { return (*this - other).empty(); }

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "'x'", "end of list", or "byte 0x07" for what the parser found instead of what it wanted.
std::string describe(std::string_view text, std::size_t pos) {
  if (pos >= text.size()) return "end of list";
  unsigned char c = static_cast<unsigned char>(text[pos]);
  char buf[32];
  if (c >= 0x20 && c < 0x7f) {
    std::snprintf(buf, sizeof buf, "'%c'", c);
  } else {
    std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
  }
  return buf;
}

struct Parser {
  std::string_view text;  // the whole input, for positions
  std::size_t pos;        // next character to read
  std::size_t end;        // one past the last non-space character
  std::string* error;

  bool fail(std::size_t at, const std::string& why) {
    if (error != nullptr) *error = "at character " + std::to_string(at + 1) + ": " + why;
    return false;
  }

  // A decimal number; `what` names it in errors ("CPU number", "stride"). Values above a million
  // saturate there (far above kMaxCpus); *digits gets the text as written.
  bool number(const char* what, long* out, std::string_view* digits) {
    std::size_t start = pos;
    if (pos >= end || !is_digit(text[pos])) {
      return fail(pos, std::string("expected a ") + what + ", found " + describe(text.substr(0, end), pos));
    }
    long v = 0;
    while (pos < end && is_digit(text[pos])) {
      if (v <= 1'000'000) v = v * 10 + (text[pos] - '0');
      pos++;
    }
    *out = v;
    *digits = text.substr(start, pos - start);
    return true;
  }

  bool cpu(long* out) {
    std::size_t start = pos;
    std::string_view digits;
    if (!number("CPU number", out, &digits)) return false;
    if (*out >= CpuSet::kMaxCpus) {
      return fail(start, "CPU " + std::string(digits) + " is beyond the largest supported CPU (" +
                             std::to_string(CpuSet::kMaxCpus - 1) + ")");
    }
    return true;
  }
};

}  // namespace

bool parse_cpuset(std::string_view text, CpuSet* out, std::string* error) {
  std::size_t begin = 0, end = text.size();
  while (begin < end && is_space(text[begin])) begin++;
  while (end > begin && is_space(text[end - 1])) end--;
  if (begin == end) {
    if (error != nullptr) *error = "empty CPU list";
    return false;
  }
  Parser p{text, begin, end, error};
  CpuSet set;
  while (true) {
    std::size_t item = p.pos;
    long lo = 0;
    if (!p.cpu(&lo)) return false;
    long hi = lo, stride = 1;
    const char* expected = "',' or '-'";
    if (p.pos < end && text[p.pos] == '-') {
      expected = "',' or ':'";
      p.pos++;
      if (!p.cpu(&hi)) return false;
      if (hi < lo) {
        return p.fail(item, "range " + std::to_string(lo) + "-" + std::to_string(hi) + " is reversed");
      }
      if (p.pos < end && text[p.pos] == ':') {
        p.pos++;
        std::size_t at = p.pos;
        std::string_view digits;
        if (!p.number("stride", &stride, &digits)) return false;
        if (stride == 0) return p.fail(at, "stride must be at least 1");
        expected = "','";
      }
    }
    for (long c = lo; c <= hi; c += stride) set.add(static_cast<int>(c));
    if (p.pos == end) break;
    if (text[p.pos] != ',') {
      return p.fail(p.pos, std::string("expected ") + expected + ", found " + describe(text.substr(0, end), p.pos));
    }
    p.pos++;
  }
  *out = set;
  return true;
}

std::string format_cpuset(const CpuSet& set) {
  std::string out;
  int cpu = set.first();
  while (cpu >= 0) {
    int last = cpu;
    while (set.contains(last + 1)) last++;
    if (!out.empty()) out += ',';
    out += std::to_string(cpu);
    if (last > cpu) {
      out += '-';
      out += std::to_string(last);
    }
    cpu = set.next(last);
  }
  return out;
}

}  // namespace mnv
