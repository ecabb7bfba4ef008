// tests/runfiles.h — the two file helpers every test that reads its data or a child's /proc
// needs: a path under the test's runfiles, and a whole file.
#pragma once

#include <string>

namespace mnv::testing {

// A path under the test's runfiles (TEST_SRCDIR/<workspace>/...; "." outside `bazel test`).
std::string runfile(const std::string& path);
// A whole file ("" when it cannot be read).
std::string slurp(const std::string& path);

}  // namespace mnv::testing
