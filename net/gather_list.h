// net/gather_list.h — output made of a send ring's bytes and caller-owned pieces, in order.
//
// Why: a response whose body is static (a constexpr string, a file loaded at start) need not be
// copied into the send ring: the socket queues a pointer to it (Socket::add_static()) and sends
// the ring's bytes and the pieces together with one writev / sendmsg. The list remembers, for
// each piece, how many ring bytes come before it, so whatever is written into the ring after a
// piece goes out after it. gather() lays the whole sequence out as iovecs, consume() takes sent
// bytes off its front (a partial send resumes where it stopped).
//
// Fixed limits: kMaxPieces pieces (a socket with that many waiting copies the next one into its
// ring instead); the layout of all of them fits kMaxIov iovecs (each piece, the ring segments
// between them, one of which may wrap). A socket takes the list from its micro-heap when it
// first gathers, and gives it back with its rings once its process goes idle.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

#include "net/vectoring.h"
#include "runtime/completion_io.h"

namespace mnv {

class GatherList {
 public:
  static constexpr int kMaxPieces = 16;
  static constexpr int kMaxIov = 2 * kMaxPieces + 2;
  static_assert(kMaxIov <= SendVector::kMaxPieces);

  // No pieces waiting: the output is the ring's bytes alone.
  bool empty() const { return count_ == 0; }
  bool full() const { return count_ == kMaxPieces; }
  // Queues n (> 0) bytes at p after the `ring_bytes` the ring holds now. Requires !full().
  void add(const char* p, std::uint32_t n, std::size_t ring_bytes);
  // The output, oldest first, as iovecs: the ring's bytes before the first piece, the piece, the
  // ring's bytes after it up to the next piece, ... Fills out[0..k) (k <= kMaxIov), returns k.
  int gather(const Vectoring& ring, iovec* out) const;
  // n bytes of the output (as gather() lays it out) were sent: they leave the ring and the pieces.
  void consume(Vectoring& ring, std::size_t n);
  // Bytes waiting in the pieces (not the ring's).
  std::size_t piece_bytes() const { return bytes_; }
  // The vector of a gathered send in flight (completion mode): its memory stays put while busy.
  SendVector& send_vector() { return send_; }

 private:
  struct Piece {
    const char* p;
    std::uint32_t n;
    std::uint32_t at;  // ring bytes before it (from the ring's oldest byte)
  };
  Piece piece_[kMaxPieces];
  int count_ = 0;
  std::size_t bytes_ = 0;  // in the pieces
  SendVector send_;
};

}  // namespace mnv
