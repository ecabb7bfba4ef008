// CRC16 and key slots: the cluster spec's test vector and examples, and the hash-tag rules.
#include "redis/slot.h"

#include <gtest/gtest.h>

namespace mnv::redis {
namespace {

TEST(Slot, Crc16MatchesTheClusterSpecsVector) {
  EXPECT_EQ(crc16("123456789"), 0x31C3);  // the spec's reference output
  EXPECT_EQ(crc16(""), 0);
}

TEST(Slot, KeySlotsAsRedisComputesThem) {
  // (CLUSTER KEYSLOT on redis-server 7.0 gives the same.)
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("bar"), 5061);
  EXPECT_EQ(key_slot("123456789"), 0x31C3 & 16383);
  EXPECT_EQ(key_slot(""), 0);
}

TEST(Slot, HashTags) {
  // The spec's examples.
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  EXPECT_EQ(key_slot("{user1000}.followers"), key_slot("user1000"));
  EXPECT_EQ(key_slot("foo{}{bar}"), crc16("foo{}{bar}") & 16383);  // an empty tag: the whole key
  EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));          // from the first '{' to the first '}'
  EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));           // only the first tag
  EXPECT_EQ(key_slot("{bar"), crc16("{bar") & 16383);             // no '}': the whole key
  EXPECT_EQ(key_slot("}bar{"), crc16("}bar{") & 16383);
}

}  // namespace
}  // namespace mnv::redis
