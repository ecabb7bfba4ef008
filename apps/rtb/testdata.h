// apps/rtb/testdata.h — the hand-written requests under apps/rtb/testdata/, for tests.
//
// A body is returned in a buffer with BidRequestParser::kPadding spare bytes after it, so it can be
// parsed in place as the server does.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mnv::rtb {

struct PaddedBody {
  std::vector<char> buf;  // body, then 64 bytes of padding
  std::size_t len = 0;
  const char* data() const { return buf.data(); }
  std::size_t capacity() const { return buf.size(); }
  std::string_view view() const { return {buf.data(), len}; }
};

// `text` copied into a padded buffer.
PaddedBody padded(std::string_view text);
// apps/rtb/testdata/NAME (e.g. "banner.json"), read from the test's runfiles; aborts with the path
// when missing.
PaddedBody testdata(std::string_view name);

}  // namespace mnv::rtb
