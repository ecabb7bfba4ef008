// redis/slot.h — Redis Cluster key slots: CRC16 (XMODEM) of the key, or of its {hash tag}, mod 16384.
//
// As the cluster spec defines it: when the key has a '{' followed later by a '}' with at least
// one byte between them, only the bytes between the first '{' and the first '}' after it are
// hashed, so "{user1000}.following" and "{user1000}.followers" share a slot.
#pragma once

#include <cstdint>
#include <string_view>

namespace mnv::redis {

inline constexpr std::uint16_t kSlots = 16384;

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), as Redis Cluster uses it.
std::uint16_t crc16(std::string_view bytes);
// The slot of `key`, hash tags applied.
std::uint16_t key_slot(std::string_view key);

}  // namespace mnv::redis
