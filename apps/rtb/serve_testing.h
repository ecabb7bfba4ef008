// apps/rtb/serve_testing.h — what the bidder's server tests share: runfiles, whole files, gzip.
#pragma once

#include <string>

namespace mnv::rtb::testing {

// A path under the test's runfiles (TEST_SRCDIR/mnvkd/...).
std::string runfile(const std::string& path);
// A whole file ("" when it cannot be read).
std::string slurp(const std::string& path);
// One gzip member of `in`, and back.
std::string gzip(const std::string& in);
std::string gunzip(const std::string& in);

}  // namespace mnv::rtb::testing
