#include "net/gather_list.h"

#include "mem/log.h"

namespace mnv {

namespace {
// The ring's data bytes [from, to) (offsets from its oldest byte) as iovecs at out: 0, 1 or 2.
int ring_range(const iovec data[2], int pieces, std::size_t from, std::size_t to, iovec* out) {
  int k = 0;
  std::size_t first = pieces > 0 ? data[0].iov_len : 0;
  if (from < to && from < first) {
    std::size_t end = to < first ? to : first;
    out[k++] = iovec{static_cast<char*>(data[0].iov_base) + from, end - from};
    from = end;
  }
  if (from < to) {
    MNV_ASSERT(pieces == 2 && to - first <= data[1].iov_len);
    out[k++] = iovec{static_cast<char*>(data[1].iov_base) + (from - first), to - from};
  }
  return k;
}
}  // namespace

void GatherList::add(const char* p, std::uint32_t n, std::size_t ring_bytes) {
  MNV_ASSERT(count_ < kMaxPieces && n > 0);
  MNV_ASSERT(count_ == 0 || piece_[count_ - 1].at <= ring_bytes);
  piece_[count_++] = Piece{p, n, static_cast<std::uint32_t>(ring_bytes)};
  bytes_ += n;
}

int GatherList::gather(const Vectoring& ring, iovec* out) const {
  iovec data[2] = {};
  int pieces = ring.data_iov(data);
  if (count_ == 1 && pieces <= 1) {  // the common case (a head, its body, maybe more after it)
    const Piece& p = piece_[0];
    int k = 0;
    if (p.at > 0) out[k++] = iovec{data[0].iov_base, p.at};
    out[k++] = iovec{const_cast<char*>(p.p), p.n};
    if (ring.size() > p.at) out[k++] = iovec{static_cast<char*>(data[0].iov_base) + p.at, ring.size() - p.at};
    return k;
  }
  int k = 0;
  std::size_t pos = 0;
  for (int i = 0; i < count_; ++i) {
    k += ring_range(data, pieces, pos, piece_[i].at, out + k);
    pos = piece_[i].at;
    out[k++] = iovec{const_cast<char*>(piece_[i].p), piece_[i].n};
  }
  k += ring_range(data, pieces, pos, ring.size(), out + k);
  MNV_ASSERT(k <= kMaxIov);
  return k;
}

void GatherList::consume(Vectoring& ring, std::size_t n) {
  if (n == ring.size() + bytes_) {  // everything went (the common case)
    ring.consume(n - bytes_);
    count_ = 0;
    bytes_ = 0;
    return;
  }
  while (n > 0) {
    // Ring bytes before the first piece.
    std::size_t before = count_ > 0 ? piece_[0].at : ring.size();
    std::size_t r = n < before ? n : before;
    if (r > 0) {
      ring.consume(r);
      for (int i = 0; i < count_; ++i) piece_[i].at -= static_cast<std::uint32_t>(r);
      n -= r;
    }
    if (n == 0) break;
    MNV_ASSERT(count_ > 0 && piece_[0].at == 0);
    Piece& f = piece_[0];
    std::uint32_t p = n < f.n ? static_cast<std::uint32_t>(n) : f.n;
    f.p += p;
    f.n -= p;
    bytes_ -= p;
    n -= p;
    if (f.n == 0) {
      for (int i = 1; i < count_; ++i) piece_[i - 1] = piece_[i];
      --count_;
    }
  }
}


}  // namespace mnv
