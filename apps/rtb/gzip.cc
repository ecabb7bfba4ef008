#include "apps/rtb/gzip.h"

#include <zlib.h>

#include "mem/log.h"

namespace mnv::rtb {

struct Gzip::Streams {
  z_stream in{};
  z_stream out{};
};

Gzip::Gzip() : z_(std::make_unique<Streams>()) {
  // 16 + MAX_WBITS: the gzip wrapper, not zlib's.
  if (inflateInit2(&z_->in, 16 + MAX_WBITS) != Z_OK) panic("rtb: zlib inflateInit2 failed");
  if (deflateInit2(&z_->out, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    panic("rtb: zlib deflateInit2 failed");
  }
}

Gzip::~Gzip() {
  inflateEnd(&z_->in);
  deflateEnd(&z_->out);
}

long Gzip::inflate(const char* in, std::size_t len, char* out, std::size_t cap) {
  z_stream& z = z_->in;
  inflateReset(&z);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in));
  z.avail_in = static_cast<uInt>(len);
  z.next_out = reinterpret_cast<Bytef*>(out);
  z.avail_out = static_cast<uInt>(cap);
  int r = ::inflate(&z, Z_FINISH);
  if (r == Z_STREAM_END) return static_cast<long>(z.total_out);
  if (r == Z_BUF_ERROR && z.avail_out == 0) return -2;
  return -1;
}

std::size_t Gzip::deflate(const char* in, std::size_t len, char* out, std::size_t cap) {
  z_stream& z = z_->out;
  deflateReset(&z);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in));
  z.avail_in = static_cast<uInt>(len);
  z.next_out = reinterpret_cast<Bytef*>(out);
  z.avail_out = static_cast<uInt>(cap);
  int r = ::deflate(&z, Z_FINISH);
  return r == Z_STREAM_END ? static_cast<std::size_t>(z.total_out) : 0;
}

}  // namespace mnv::rtb
