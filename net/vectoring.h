// net/vectoring.h — a ring buffer exposed as one or two iovecs (the seed's vk_vectoring).
//
// The buffer lives in the owning process's micro-heap and is allocated on first use; a socket
// keeps it while its process is busy and gives it back (release_if_empty()) once the process has
// gone idle (the kernel's trim pass, see Socket::keep_rings_until_idle()), so an idle connection
// holds no ring memory. Data and free space are each at most two contiguous pieces,
// ready for readv/writev (or io_uring) without copying.
//
// A ring can also be lent someone else's bytes (lend()): a receive ring reads a buffer that
// the poller filled (io_uring provided buffers) in place, instead of copying it in first. While
// lent the ring holds exactly those bytes and has no free space; its owner ends the loan
// (end_loan(), which gives its own buffer back) before anything is written into it.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mem/log.h"

namespace mnv {

class Vectoring {
 public:
  // Ring capacities are chosen so capacity + the heap's 16-byte block header is a size class.
  static constexpr std::uint32_t kDefaultCapacity = 4096 - 16;

  explicit Vectoring(std::uint32_t capacity = kDefaultCapacity) : cap_(capacity) {}
  ~Vectoring() { release(); }
  Vectoring(const Vectoring&) = delete;
  Vectoring& operator=(const Vectoring&) = delete;

  // Allocates the buffer from the current process's heap if it has none; false on ENOMEM.
  bool ensure() { return buf_ != nullptr || allocate(); }
  // Frees the buffer if nothing is buffered and it is not pinned (or lent).
  void release_if_empty() {
    if (len_ == 0 && !pinned_ && !lent_) release();
  }
  // Reads `n` (> 0) bytes at `p`, which someone else owns, in place: the ring must be empty and
  // not pinned. Until end_loan() the ring's data is those bytes (consumed as usual) and it has no
  // free space.
  void lend(const char* p, std::uint32_t n) {
    MNV_ASSERT(len_ == 0 && !pinned_ && !lent_ && n > 0);
    own_ = buf_;
    own_cap_ = cap_;
    buf_ = const_cast<char*>(p);  // (never written while lent: no free space)
    cap_ = n;
    head_ = 0;
    len_ = n;
    lent_ = true;
  }
  bool lent() const { return lent_; }
  // Ends a loan: the ring gets its own buffer back, and what was not consumed of the lent bytes
  // is copied into it (allocated if needed). False on ENOMEM (the loan then goes on).
  bool end_loan();
  bool allocated() const { return buf_ != nullptr; }
  // While pinned (the OS is receiving into the free space or sending the data, see
  // Socket::fill/drain), the buffer is not released when empty and the data does not move back to
  // the start of the buffer when it empties, so the free space after it stays where it was.
  void pin() { pinned_ = true; }
  void unpin() { pinned_ = false; }
  bool pinned() const { return pinned_; }

  std::size_t size() const { return len_; }
  std::size_t capacity() const { return cap_; }
  std::size_t space() const { return cap_ - len_; }
  bool empty() const { return len_ == 0; }
  bool full() const { return len_ == cap_; }

  // The buffered bytes, oldest first: fills out[0..n), returns n (0, 1 or 2).
  int data_iov(iovec out[2]) const {
    if (len_ == 0) return 0;
    std::uint32_t first = cap_ - head_ < len_ ? cap_ - head_ : len_;
    out[0] = iovec{buf_ + head_, first};
    if (first == len_) return 1;
    out[1] = iovec{buf_, len_ - first};
    return 2;
  }
  // The free space after the data: fills out[0..n), returns n. Requires allocated().
  int space_iov(iovec out[2]) const {
    MNV_ASSERT(buf_ != nullptr);
    std::uint32_t space = cap_ - len_;
    if (space == 0) return 0;
    std::uint32_t tail = head_ + len_;
    if (tail >= cap_) tail -= cap_;
    std::uint32_t first = cap_ - tail < space ? cap_ - tail : space;
    out[0] = iovec{buf_ + tail, first};
    if (first == space) return 1;
    out[1] = iovec{buf_, space - first};
    return 2;
  }
  // n bytes were written into the space / taken from the data.
  void commit(std::size_t n) {
    MNV_ASSERT(n <= space());
    len_ += static_cast<std::uint32_t>(n);
  }
  void consume(std::size_t n) {
    MNV_ASSERT(n <= len_);
    head_ += static_cast<std::uint32_t>(n);
    if (head_ >= cap_) head_ -= cap_;
    len_ -= static_cast<std::uint32_t>(n);
    if (len_ == 0 && !pinned_) head_ = 0;  // keep data contiguous when possible
  }

  // Copies up to n bytes out (and consumes them). Returns the count.
  std::size_t read(void* dst, std::size_t n);
  // Copies up to n bytes in. Returns the count. Requires allocated().
  std::size_t write(const void* src, std::size_t n) {
    MNV_ASSERT(buf_ != nullptr);
    std::uint32_t tail = head_ + len_;
    if (tail < cap_ && n <= cap_ - tail) {  // the common case: it fits after the data
      std::memcpy(buf_ + tail, src, n);
      len_ += static_cast<std::uint32_t>(n);
      return n;
    }
    return write_wrapped(src, n);
  }
  // Length of the first line within the first `limit` buffered bytes, newline included; 0 if
  // there is no newline there.
  std::size_t line_length(std::size_t limit) const {
    if (len_ == 0) return 0;
    if (head_ + len_ <= cap_) {  // contiguous
      std::size_t span = limit < len_ ? limit : len_;
      const void* nl = std::memchr(buf_ + head_, '\n', span);
      return nl == nullptr ? 0 : static_cast<std::size_t>(static_cast<const char*>(nl) - (buf_ + head_)) + 1;
    }
    return line_length_wrapped(limit);
  }
  // Moves up to n bytes from this ring into `to` (which must be allocated). Returns the count.
  std::size_t move_to(Vectoring& to, std::size_t n) {
    if (n > len_) n = len_;
    if (n == 0) return 0;
    if (head_ + n <= cap_) {  // the bytes to move are contiguous
      std::size_t done = to.write(buf_ + head_, n);
      consume(done);
      return done;
    }
    return move_to_wrapped(to, n);
  }

 private:
  bool allocate();
  void release();
  std::size_t write_wrapped(const void* src, std::size_t n);
  std::size_t line_length_wrapped(std::size_t limit) const;
  std::size_t move_to_wrapped(Vectoring& to, std::size_t n);
  char* buf_ = nullptr;
  std::uint32_t cap_;
  std::uint32_t head_ = 0;  // index of the oldest byte
  std::uint32_t len_ = 0;
  bool pinned_ = false;
  bool lent_ = false;
  std::uint32_t own_cap_ = 0;  // while lent: the ring's own buffer and capacity
  char* own_ = nullptr;
};

}  // namespace mnv
