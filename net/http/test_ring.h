// net/http/test_ring.h — (tests) a byte ring like net/Vectoring's receive ring, without a heap:
// its data comes out as one or two ByteSpans, so tests can put a message across the wrap anywhere.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "net/byte_spans.h"

namespace mnv::http::testing {

class TestRing {
 public:
  // `start`: where the first byte goes (so data wraps after capacity - start bytes).
  explicit TestRing(std::size_t capacity, std::size_t start = 0)
      : buf_(capacity), head_(start % capacity) {}

  std::size_t size() const { return len_; }
  std::size_t space() const { return buf_.size() - len_; }
  // Appends up to s.size() bytes; returns how many fit.
  std::size_t write(std::string_view s) {
    std::size_t n = s.size() < space() ? s.size() : space();
    for (std::size_t i = 0; i < n; ++i) buf_[(head_ + len_ + i) % buf_.size()] = s[i];
    len_ += n;
    return n;
  }
  void consume(std::size_t n) {
    head_ = (head_ + n) % buf_.size();
    len_ -= n;
  }
  ByteSpans data() const {
    std::size_t first = buf_.size() - head_ < len_ ? buf_.size() - head_ : len_;
    return ByteSpans(std::string_view(buf_.data() + head_, first),
                 std::string_view(buf_.data(), len_ - first));
  }

 private:
  std::vector<char> buf_;
  std::size_t head_;
  std::size_t len_ = 0;
};

}  // namespace mnv::http::testing
