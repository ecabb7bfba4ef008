// net/http/fuzz/corpus_test.cc — runs the request fuzzer's checks (request_fuzzer.cc: every way
// of feeding the bytes agrees; llhttp agrees) over the checked-in seed corpus, as a plain test in
// every `bazel test` run, without clang or libFuzzer. tools/fuzz_http.sh does the fuzzing.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

TEST(RequestFuzzerCorpusTest, EverySeedPassesTheFuzzersChecks) {
  const char* dir_env = std::getenv("CORPUS_DIR");
  std::filesystem::path dir = dir_env != nullptr ? dir_env : "net/http/fuzz/corpus/request";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir << " is not a directory";
  int seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream f(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(entry.path().string());
    // A mismatch aborts (the test fails with the fuzzer's report on stderr).
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++seeds;
  }
  EXPECT_GE(seeds, 20);
}

}  // namespace
