// apps/rtb/gzip.h — gzip request bodies in, gzip responses out, with zlib, allocating nothing per
// request.
//
// One Gzip per shard: zlib allocates its inflate and deflate state once, here, and each use
// resets it (inflateReset / deflateReset allocate nothing). Whole buffers only: a bid request is
// read whole before it is parsed, and a response is written whole before it is sent. Level 1: a
// response is about 0.6 KB; speed matters more than the last percent.
#pragma once

#include <cstddef>
#include <memory>

namespace mnv::rtb {

class Gzip {
 public:
  Gzip();  // dies if zlib cannot set up (a start-up failure)
  ~Gzip();
  Gzip(const Gzip&) = delete;
  Gzip& operator=(const Gzip&) = delete;

  // Inflates a whole gzip member into out[0..cap); returns its length, or -1 for data that is
  // not gzip or is corrupt, -2 when the result does not fit in cap.
  long inflate(const char* in, std::size_t len, char* out, std::size_t cap);
  // Deflates in[0..len) as one gzip member into out[0..cap); returns its length, or 0 when it
  // does not fit.
  std::size_t deflate(const char* in, std::size_t len, char* out, std::size_t cap);

 private:
  struct Streams;
  std::unique_ptr<Streams> z_;
};

}  // namespace mnv::rtb
