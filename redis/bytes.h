// redis/bytes.h — bytes in the receive ring as one or two contiguous pieces, oldest first.
//
// A reply that straddles the receive ring's wrap (net/vectoring.h) is two pieces; the parser
// and the reply views (reply.h) read it in place through this view, so nothing is copied. A
// caller that needs one contiguous string either checks contiguous() and takes first(), or
// copies the bytes out (copy()). (net/http/spans.h is the same idea for HTTP; redis/ sits
// beside net/http, not above it, so it has its own.)
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstring>
#include <string_view>

namespace mnv::redis {

class Bytes {
 public:
  Bytes() = default;
  explicit Bytes(std::string_view one) : a_(one) {}
  Bytes(std::string_view first, std::string_view second) : a_(first), b_(second) {
    if (a_.empty()) {
      a_ = b_;
      b_ = {};
    }
  }
  // From Vectoring::data_iov(): `n` is 0, 1 or 2.
  Bytes(const iovec* iov, int n)
      : Bytes(n > 0 ? std::string_view(static_cast<const char*>(iov[0].iov_base), iov[0].iov_len) : std::string_view(),
              n > 1 ? std::string_view(static_cast<const char*>(iov[1].iov_base), iov[1].iov_len)
                    : std::string_view()) {}

  std::size_t size() const { return a_.size() + b_.size(); }
  bool empty() const { return a_.empty(); }
  std::string_view first() const { return a_; }
  std::string_view second() const { return b_; }
  // All bytes are in first() (a view of them needs no copy).
  bool contiguous() const { return b_.empty(); }

  char operator[](std::size_t i) const { return i < a_.size() ? a_[i] : b_[i - a_.size()]; }
  // Bytes [off, off + n) (which must be there).
  Bytes sub(std::size_t off, std::size_t n) const {
    if (off >= a_.size()) return Bytes(b_.substr(off - a_.size(), n));
    std::size_t k = a_.size() - off < n ? a_.size() - off : n;
    return Bytes(a_.substr(off, k), b_.substr(0, n - k));
  }
  // Copies bytes [off, off + n) out (they must be there).
  void copy(std::size_t off, std::size_t n, char* dst) const {
    if (off < a_.size()) {
      std::size_t k = a_.size() - off < n ? a_.size() - off : n;
      std::memcpy(dst, a_.data() + off, k);
      dst += k;
      n -= k;
      off = 0;
    } else {
      off -= a_.size();
    }
    if (n > 0) std::memcpy(dst, b_.data() + off, n);
  }
  // Copies at most `len` bytes into dst; returns the count.
  std::size_t copy_to(char* dst, std::size_t len) const {
    std::size_t n = size() < len ? size() : len;
    copy(0, n, dst);
    return n;
  }
  bool operator==(std::string_view s) const {
    return s.size() == size() && s.substr(0, a_.size()) == a_ && s.substr(a_.size()) == b_;
  }
  bool starts_with(std::string_view s) const { return s.size() <= size() && sub(0, s.size()) == s; }
  // The index of the first `c` in [from, to), or `to` if none.
  std::size_t find(char c, std::size_t from, std::size_t to) const {
    if (to > size()) to = size();
    if (from < a_.size()) {
      std::size_t end = to < a_.size() ? to : a_.size();
      if (const void* p = std::memchr(a_.data() + from, c, end - from)) {
        return static_cast<std::size_t>(static_cast<const char*>(p) - a_.data());
      }
      from = a_.size();
    }
    if (from < to) {
      std::size_t off = from - a_.size();
      if (const void* p = std::memchr(b_.data() + off, c, to - from)) {
        return a_.size() + static_cast<std::size_t>(static_cast<const char*>(p) - b_.data());
      }
    }
    return to;
  }

 private:
  std::string_view a_;
  std::string_view b_;
};

}  // namespace mnv::redis
