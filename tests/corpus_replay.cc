// tests/corpus_replay.cc — a fuzz target's checked-in seeds run through its checks as a plain
// gtest, in every `bazel test` run, without clang or libFuzzer: linked with the target's source
// (its LLVMFuzzerTestOneInput, which aborts on a failed check), one per fuzz package
// (net/http/fuzz, redis/fuzz, apps/rtb/fuzz). The test's `env` names the seeds:
//   CORPUS_DIR  the seed directory, from the workspace root
//   MIN_SEEDS   how many seeds it must hold at least (a glob that went empty fails loudly)
// The fuzzing itself is tools/fuzz_*.sh.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

TEST(FuzzCorpusReplay, EverySeedPassesTheFuzzTargetsChecks) {
  const char* dir_env = std::getenv("CORPUS_DIR");
  const char* min_env = std::getenv("MIN_SEEDS");
  ASSERT_NE(dir_env, nullptr) << "set CORPUS_DIR (the test's env) to the seed directory";
  ASSERT_NE(min_env, nullptr) << "set MIN_SEEDS (the test's env) to the least number of seeds";
  const std::filesystem::path dir = dir_env;
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir << " is not a directory";
  int seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream f(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(entry.path().string());
    // A failed check aborts: the test fails with the fuzz target's report on stderr.
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++seeds;
  }
  EXPECT_GE(seeds, std::atoi(min_env)) << "seeds in " << dir;
}

}  // namespace
