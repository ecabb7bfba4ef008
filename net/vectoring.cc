#include "net/vectoring.h"

#include <algorithm>
#include <cstring>

#include "mem/heap.h"
#include "mem/log.h"
#include "runtime/process.h"

namespace mnv {

bool Vectoring::ensure() {
  if (buf_ != nullptr) return true;
  buf_ = static_cast<char*>(this_process().heap().allocate(cap_));
  head_ = 0;
  return buf_ != nullptr;
}

void Vectoring::release() {
  if (buf_ == nullptr) return;
  Heap::owner(buf_)->free(buf_);
  buf_ = nullptr;
  head_ = 0;
  len_ = 0;
}

int Vectoring::data_iov(iovec out[2]) const {
  if (len_ == 0) return 0;
  std::uint32_t first = std::min(len_, cap_ - head_);
  out[0] = iovec{buf_ + head_, first};
  if (first == len_) return 1;
  out[1] = iovec{buf_, len_ - first};
  return 2;
}

int Vectoring::space_iov(iovec out[2]) const {
  MNV_ASSERT(buf_ != nullptr);
  std::uint32_t space = cap_ - len_;
  if (space == 0) return 0;
  std::uint32_t tail = head_ + len_;
  if (tail >= cap_) tail -= cap_;
  std::uint32_t first = std::min(space, cap_ - tail);
  out[0] = iovec{buf_ + tail, first};
  if (first == space) return 1;
  out[1] = iovec{buf_, space - first};
  return 2;
}

void Vectoring::commit(std::size_t n) {
  MNV_ASSERT(n <= space());
  len_ += static_cast<std::uint32_t>(n);
}

void Vectoring::consume(std::size_t n) {
  MNV_ASSERT(n <= len_);
  head_ += static_cast<std::uint32_t>(n);
  if (head_ >= cap_) head_ -= cap_;
  len_ -= static_cast<std::uint32_t>(n);
  if (len_ == 0 && !pinned_) head_ = 0;  // keep data contiguous when possible
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

std::size_t Vectoring::write(const void* src, std::size_t n) {
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

std::size_t Vectoring::line_length(std::size_t limit) const {
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

std::size_t Vectoring::move_to(Vectoring& to, std::size_t n) {
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
