// net/http/spans.h — buffered bytes as one or two contiguous pieces, oldest first.
//
// A connection's receive ring (net/vectoring.h) holds its data as one or two iovecs: two when the
// data straddles the ring's wrap. The HTTP parsers read their input through this view so they
// work on the ring in place, whether or not a message straddles the wrap, with no copy.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstring>
#include <string_view>

namespace mnv::http {

class Spans {
 public:
  Spans() = default;
  explicit Spans(std::string_view one) : a_(one) {}
  Spans(std::string_view first, std::string_view second) : a_(first), b_(second) {
    if (a_.empty()) {
      a_ = b_;
      b_ = {};
    }
  }
  // From Vectoring::data_iov(): `n` is 0, 1 or 2.
  Spans(const iovec* iov, int n) {
    if (n > 0) a_ = {static_cast<const char*>(iov[0].iov_base), iov[0].iov_len};
    if (n > 1) b_ = {static_cast<const char*>(iov[1].iov_base), iov[1].iov_len};
    if (a_.empty()) {
      a_ = b_;
      b_ = {};
    }
  }

  std::size_t size() const { return a_.size() + b_.size(); }
  bool empty() const { return a_.empty(); }
  std::string_view first() const { return a_; }
  std::string_view second() const { return b_; }

  char operator[](std::size_t i) const { return i < a_.size() ? a_[i] : b_[i - a_.size()]; }
  // Whether bytes [0, n) lie in the first piece (so a view of them needs no copy).
  bool contiguous(std::size_t n) const { return n <= a_.size(); }
  // Copies bytes [off, off + n) out (they must be buffered). `dst` may be where the first piece
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
  // Bytes [0, n) as one contiguous piece: in place when they lie in the first piece, else copied
  // into `scratch` (n bytes at `scratch`, scratch_size of them available); null when it is too small.
  const char* linear(std::size_t n, char* scratch, std::size_t scratch_size) const {
    if (contiguous(n)) return a_.data();
    if (scratch_size < n) return nullptr;
    copy(0, n, scratch);
    return scratch;
  }
  // The bytes after the first n.
  Spans advanced(std::size_t n) const {
    if (n < a_.size()) return Spans(a_.substr(n), b_);
    return Spans(b_.substr(n - a_.size()));
  }
  // The longest contiguous run starting at byte `off` (empty at the end).
  std::string_view run(std::size_t off) const {
    if (off < a_.size()) return a_.substr(off);
    off -= a_.size();
    return off < b_.size() ? b_.substr(off) : std::string_view{};
  }

 private:
  std::string_view a_;
  std::string_view b_;
};

}  // namespace mnv::http
