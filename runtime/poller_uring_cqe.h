// runtime/poller_uring_cqe.h — internal to the io_uring poller (poller_uring*.cc): how an SQE's
// user_data names what its CQE is for, and the poller's shared constants.
//
// user_data of every SQE: | kind: 2 bits | generation: 30 bits | fd: 32 bits |. The generation
// wraps after 2^30 forget() calls on one fd, far more than can happen while one old CQE waits.
// A completion-mode transfer (kIo) puts its direction in the generation's top bit and its
// sequence number (per fd, wrapping after 2^28 transfers) in the low 28; a multishot receive
// sets the next bit (kMulti) and puts its per-fd multishot generation in the low 28.
#pragma once

#include <poll.h>

#include <cstdint>

namespace mnv::uring {

// What a CQE is for.
enum CqeKind : std::uint64_t {
  kPoll = 0,    // an fd's readiness poll
  kWake = 1,    // the wake eventfd's poll
  kIgnore = 2,  // a removal, an update, a cancel: nothing to do with its result
  kIo = 3,      // a completion-mode transfer or multishot receive
};
constexpr std::uint32_t kGenMask = (1u << 30) - 1;
constexpr std::uint32_t kSend = 1u << 29;   // kIo: the send (else the receive)
constexpr std::uint32_t kMulti = 1u << 28;  // kIo: a multishot receive
constexpr std::uint32_t kSeqMask = kMulti - 1;

inline std::uint64_t user_data(CqeKind kind, std::uint32_t gen, int fd) {
  return (static_cast<std::uint64_t>(kind) << 62) | (static_cast<std::uint64_t>(gen & kGenMask) << 32) |
         static_cast<std::uint32_t>(fd);
}
inline CqeKind kind_of(std::uint64_t data) { return static_cast<CqeKind>(data >> 62); }
inline std::uint32_t gen_of(std::uint64_t data) { return static_cast<std::uint32_t>(data >> 32) & kGenMask; }
inline int fd_of(std::uint64_t data) { return static_cast<int>(static_cast<std::uint32_t>(data)); }
inline std::uint64_t io_data(bool send, std::uint32_t seq, int fd) {
  return user_data(kIo, (send ? kSend : 0) | (seq & kSeqMask), fd);
}
inline std::uint64_t ms_data(std::uint32_t ms_gen, int fd) { return user_data(kIo, kMulti | (ms_gen & kSeqMask), fd); }

// Multishot receive: the provided-buffer group, and how many buffers one fd may hold queued
// before its receive is stopped (its process is not reading).
constexpr unsigned short kBufGroup = 0;
constexpr unsigned kMaxQueued = 4;

// What every fd is registered for, once: the kernel only blocks after EAGAIN (edge-triggered use).
constexpr unsigned kInputMask = POLLIN | POLLRDHUP;  // watched while registered; POLLOUT on demand
constexpr std::uint32_t kInterestBits = POLLIN | POLLOUT | POLLRDHUP;
constexpr std::uint32_t kReported = POLLIN | POLLOUT | POLLRDHUP | POLLERR | POLLHUP;

}  // namespace mnv::uring
