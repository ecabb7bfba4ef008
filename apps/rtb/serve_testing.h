// apps/rtb/serve_testing.h — what the bidder's server tests share: runfiles and whole files
// (tests/runfiles.h), gzip.
#pragma once

#include <string>

#include "tests/runfiles.h"

namespace mnv::rtb::testing {

using ::mnv::testing::runfile;
using ::mnv::testing::slurp;
// One gzip member of `in`, and back.
std::string gzip(const std::string& in);
std::string gunzip(const std::string& in);

}  // namespace mnv::rtb::testing
