// redis/fuzz/corpus_test.cc — runs the reply fuzzer's checks (reply_fuzzer.cc: whole, in pieces
// and across a wrap agree; every reply's invariants hold) over the checked-in seed corpus, as a
// plain test in every `bazel test` run. tools/fuzz_resp.sh does the fuzzing.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

TEST(ReplyFuzzerCorpusTest, EverySeedPassesTheFuzzersChecks) {
  std::filesystem::path dir = "redis/fuzz/corpus";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir << " is not a directory";
  int seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream f(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(entry.path().string());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());  // aborts on a mismatch
    ++seeds;
  }
  EXPECT_GE(seeds, 15);
}

}  // namespace
