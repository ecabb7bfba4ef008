// net/byte_spans.h — buffered bytes as one or two contiguous pieces, oldest first.
//
// A connection's receive ring (net/vectoring.h) holds its data as one or two iovecs: two when the
// data straddles the ring's wrap. The protocol parsers above net/ (net/http's request and response
// parsers, redis/'s reply parser) read their input through this view, so they work on the ring in
// place, whether or not a message straddles the wrap, with no copy. Header-only and free of
// dependencies, so that the parsers' fuzz targets build without the runtime.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstring>
#include <string_view>

namespace mnv {

class ByteSpans {
 public:
  ByteSpans() = default;
  explicit ByteSpans(std::string_view one) : a_(one) {}
  ByteSpans(std::string_view first, std::string_view second) : a_(first), b_(second) {
    if (a_.empty()) {
      a_ = b_;
      b_ = {};
    }
  }
  // From Vectoring::data_iov(): `n` is 0, 1 or 2.
  ByteSpans(const iovec* iov, int n)
      : ByteSpans(n > 0 ? std::string_view(static_cast<const char*>(iov[0].iov_base), iov[0].iov_len)
                        : std::string_view(),
                  n > 1 ? std::string_view(static_cast<const char*>(iov[1].iov_base), iov[1].iov_len)
                        : std::string_view()) {}

  std::size_t size() const { return a_.size() + b_.size(); }
  bool empty() const { return a_.empty(); }
  std::string_view first() const { return a_; }
  std::string_view second() const { return b_; }
  char operator[](std::size_t i) const { return i < a_.size() ? a_[i] : b_[i - a_.size()]; }

  // All bytes lie in first() (a view of them needs no copy).
  bool contiguous() const { return b_.empty(); }
  // Bytes [0, n) lie in the first piece.
  bool contiguous(std::size_t n) const { return n <= a_.size(); }

  // Bytes [off, off + n) (which must be there).
  ByteSpans sub(std::size_t off, std::size_t n) const {
    if (off >= a_.size()) return ByteSpans(b_.substr(off - a_.size(), n));
    std::size_t k = a_.size() - off < n ? a_.size() - off : n;
    return ByteSpans(a_.substr(off, k), b_.substr(0, n - k));
  }
  // The bytes after the first n.
  ByteSpans advanced(std::size_t n) const {
    if (n < a_.size()) return ByteSpans(a_.substr(n), b_);
    return ByteSpans(b_.substr(n - a_.size()));
  }
  // The longest contiguous run starting at byte `off` (empty at the end).
  std::string_view run(std::size_t off) const {
    if (off < a_.size()) return a_.substr(off);
    off -= a_.size();
    return off < b_.size() ? b_.substr(off) : std::string_view{};
  }

  // Copies bytes [off, off + n) out (they must be there). `dst` may be where the first piece
  // already lies (that part then stays).
  void copy(std::size_t off, std::size_t n, char* dst) const {
    if (off < a_.size()) {
      std::size_t k = a_.size() - off < n ? a_.size() - off : n;
      if (dst != a_.data() + off) std::memcpy(dst, a_.data() + off, k);
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
  // Bytes [0, n) as one contiguous piece: in place when they lie in the first piece, else copied
  // into `scratch` (scratch_size bytes available); null when it is too small.
  const char* linear(std::size_t n, char* scratch, std::size_t scratch_size) const {
    if (contiguous(n)) return a_.data();
    if (scratch_size < n) return nullptr;
    copy(0, n, scratch);
    return scratch;
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

}  // namespace mnv
