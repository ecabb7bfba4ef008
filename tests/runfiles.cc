// tests/runfiles.cc — see runfiles.h.
#include "tests/runfiles.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace mnv::testing {

std::string runfile(const std::string& path) {
  const char* dir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return std::string(dir != nullptr ? dir : ".") + "/" + (workspace != nullptr ? workspace : "mnvkd") + "/" + path;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace mnv::testing
