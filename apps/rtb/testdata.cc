// apps/rtb/testdata.cc — reads apps/rtb/testdata/ files into padded buffers (see testdata.h).
#include "apps/rtb/testdata.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace mnv::rtb {

PaddedBody padded(std::string_view text) {
  PaddedBody b;
  b.len = text.size();
  b.buf.assign(text.size() + 64, '\0');
  std::copy(text.begin(), text.end(), b.buf.begin());
  return b;
}

PaddedBody testdata(std::string_view name) {
  std::string path = "apps/rtb/testdata/" + std::string(name);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "testdata: cannot open %s\n", path.c_str());
    std::abort();
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return padded(ss.str());
}

}  // namespace mnv::rtb
