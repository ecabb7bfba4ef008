// net/vectoring.cc — the ring buffer's out-of-line parts (allocation, wrapped copies, loans).
#include "net/vectoring.h"

#include <algorithm>
#include <cstring>

#include "mem/heap.h"
#include "mem/log.h"
#include "runtime/process.h"

namespace mnv {

bool Vectoring::allocate() {
  buf_ = static_cast<char*>(this_process().heap().allocate(cap_));
  head_ = 0;
  return buf_ != nullptr;
}

void Vectoring::release() {
  if (lent_) {  // (the lender takes its bytes back itself)
    buf_ = own_;
    cap_ = own_cap_;
    lent_ = false;
  }
  if (buf_ == nullptr) return;
  Heap::owner(buf_)->free(buf_);
  buf_ = nullptr;
  head_ = 0;
  len_ = 0;
}

bool Vectoring::end_loan() {
  MNV_ASSERT(lent_);
  const char* rest = buf_ + head_;
  std::uint32_t n = len_;
  if (n > 0 && own_ == nullptr) {
    own_ = static_cast<char*>(this_process().heap().allocate(own_cap_));
    if (own_ == nullptr) return false;
  }
  MNV_ASSERT(n <= own_cap_);
  buf_ = own_;
  cap_ = own_cap_;
  own_ = nullptr;
  lent_ = false;
  head_ = 0;
  len_ = n;
  if (n > 0) std::memcpy(buf_, rest, n);
  return true;
}

std::size_t Vectoring::read(void* dst, std::size_t n) {
  iovec v[2];
  int k = data_iov(v);
  std::size_t done = 0;
  for (int i = 0; i < k && done < n; ++i) {
    std::size_t c = std::min(n - done, v[i].iov_len);
    std::memcpy(static_cast<char*>(dst) + done, v[i].iov_base, c);
    done += c;
  }
  consume(done);
  return done;
}

std::size_t Vectoring::write_wrapped(const void* src, std::size_t n) {
  iovec v[2];
  int k = space_iov(v);
  std::size_t done = 0;
  for (int i = 0; i < k && done < n; ++i) {
    std::size_t c = std::min(n - done, v[i].iov_len);
    std::memcpy(v[i].iov_base, static_cast<const char*>(src) + done, c);
    done += c;
  }
  commit(done);
  return done;
}

std::size_t Vectoring::line_length_wrapped(std::size_t limit) const {
  iovec v[2];
  int k = data_iov(v);
  std::size_t seen = 0;
  for (int i = 0; i < k && seen < limit; ++i) {
    std::size_t c = std::min(limit - seen, v[i].iov_len);
    if (const void* nl = std::memchr(v[i].iov_base, '\n', c)) {
      return seen + static_cast<std::size_t>(static_cast<const char*>(nl) - static_cast<const char*>(v[i].iov_base)) + 1;
    }
    seen += c;
  }
  return 0;
}

std::size_t Vectoring::move_to_wrapped(Vectoring& to, std::size_t n) {
  iovec v[2];
  int k = data_iov(v);
  std::size_t done = 0;
  for (int i = 0; i < k && done < n; ++i) {
    std::size_t c = to.write(v[i].iov_base, std::min(n - done, v[i].iov_len));
    done += c;
    if (c < v[i].iov_len) break;
  }
  consume(done);
  return done;
}

}  // namespace mnv
