// apps/rtb/fuzz/corpus_test.cc — runs the bid request fuzzer's checks (bid_request_fuzzer.cc)
// over its seeds, the hand-written requests of apps/rtb/testdata, as a plain test in every
// `bazel test`, without clang or libFuzzer. tools/fuzz_rtb.sh does the fuzzing.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

TEST(BidRequestFuzzerCorpusTest, EverySeedPassesTheFuzzersChecks) {
  std::filesystem::path dir = "apps/rtb/testdata";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir << " is not a directory";
  int seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream f(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(entry.path().string());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());  // aborts on a broken check
    ++seeds;
  }
  EXPECT_GE(seeds, 14);
}

}  // namespace
