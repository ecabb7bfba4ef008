// shard/mailbox.h — the cross-shard mailboxes: an N×N matrix of lock-free SPSC rings.
//
// Shards share nothing but these. Ring [from][to] is written only by shard `from`'s thread and
// read only by shard `to`'s thread (the diagonal is unused), so every ring has exactly one
// producer and one consumer and needs no lock and no read-modify-write on its hot path. A message
// is a fixed 64-byte POD whose payload is copied in: it never points into another shard's
// micro-heap (DESIGN.md §3 "Shards"). All memory — N×(N−1) rings of fixed capacity and the
// per-shard state — is one MAP_SHARED mapping made by the constructor (shard/shared_memory.h),
// so shards forked as processes after it share the mailboxes as threads do; send, flush and
// receive never allocate.
//
// Sending is two steps: send() stages a message (invisible to the receiver), flush() publishes
// everything the shard staged since its last flush with one store per destination ring and wakes
// those destinations that are asleep. A shard typically sends during a loop turn and flushes once
// at its end (Seastar's batches of 16). A full ring refuses: send() returns false and the caller
// keeps the message (flush, then retry on a later turn); nothing is dropped, nothing grows.
//
// Sleeping without losing a wake-up. A shard with nothing to run sleeps in its poller; a sender
// must wake it, but waking costs a system call (Poller::wake()), so senders wake only shards that
// said they are asleep. The receiving shard `r` does, on its own thread:
//
//     prepare_sleep(r);                 // asleep[r] = 1                          (seq_cst store)
//     if (has_messages(r)) {            // reload every ring's write index into r (seq_cst loads)
//       cancel_sleep(r);                //   something arrived meanwhile: don't sleep
//     } else {
//       poller.wait(...);               //   sleep until Poller::wake() (or I/O)
//       wake_done(r);                   // asleep[r] = 0
//     }
//
// and flush() on a sender's thread does, for each destination r it staged messages for:
//
//     ring[s][r].publish(seq_cst);      // write index store                      (seq_cst store)
//     if (asleep[r] (seq_cst load) && asleep[r].exchange(0) == 1) waker[r]();
//
// Both sides store one location and then load the other's (Dekker's pattern). Every one of those
// four operations is seq_cst, so they fall in one total order S, and in S either the receiver's
// store of asleep=1 precedes the sender's load of it — then the sender sees 1 (or a later 0 that
// only another waking sender, cancel_sleep or wake_done could have written; in each case the
// receiver is, or is about to be, awake and checks its rings again before it next sleeps) and
// wakes it — or the sender's publish precedes the receiver's load of the write index, which then
// sees the message and the receiver does not sleep. The case "sender misses the flag and receiver
// misses the message" would need each load to precede the other side's store in S, a cycle with
// the two program orders: impossible. So no wake-up is lost. The exchange makes only the first of
// several concurrent senders call the waker (one system call per sleep, not one per flush).
// On x86-64 the cost is one xchg per destination ring per flush (the only full barrier on the send
// path); the receiver's seq_cst loads are plain loads. Wakers must tolerate spurious wake-ups
// (Poller::wake() does: a wake with nobody sleeping makes the next wait return at once).
//
// Threads: shard i's thread calls send(i, ...), flush(i), receive(i, ...), has_messages(i) and
// the sleep calls for i. set_waker() is called before the shards start. stats() may be called
// from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>

#include "shard/shared_memory.h"
#include "shard/spsc_ring.h"

namespace mnv {

// Bytes of inline payload in a ShardMessage.
inline constexpr std::size_t kShardPayload = 48;

// One cross-shard message: a cache line, copied by value. Not declared over-aligned (the rings
// align their slots): micro-thread frames are 16-byte aligned, and a message lives in them.
struct ShardMessage {
  std::uint32_t kind;                    // opcode, defined by the sender and receiver
  std::uint32_t from;                    // source shard; send() fills it in
  std::uint64_t id;                      // sequence or correlation id
  unsigned char payload[kShardPayload];  // copied in; never a pointer into a micro-heap
};
static_assert(sizeof(ShardMessage) == 64);
static_assert(std::is_trivially_copyable_v<ShardMessage>);
static_assert(std::is_standard_layout_v<ShardMessage>);

// Counters of one shard, as seen by stats().
struct MailboxStats {
  std::uint64_t sent = 0;      // messages this shard staged (send() returned true)
  std::uint64_t received = 0;  // messages this shard received
  std::uint64_t wakeups = 0;   // wakers this shard called for sleeping destinations
  std::uint64_t refused = 0;   // send() calls refused because the ring was full
};

class Mailboxes {
 public:
  using Ring = SpscRing<ShardMessage>;
  // Wakes a sleeping shard from another thread (in production: Poller::wake() on its poller, or
  // a write to its poller's wake eventfd when shards are processes).
  using Waker = void (*)(void* ctx);

  // Rings for `shards` shards (at least 1), each of `capacity_per_ring` messages (a power of
  // two, at least 2).
  Mailboxes(std::size_t shards, std::size_t capacity_per_ring);
  ~Mailboxes();

  Mailboxes(const Mailboxes&) = delete;
  Mailboxes& operator=(const Mailboxes&) = delete;

  std::size_t shards() const { return shards_; }
  std::size_t capacity_per_ring() const { return capacity_; }

  // Registers how to wake `shard` when it sleeps. Call before the shards' threads run; a shard
  // that uses prepare_sleep() must have one.
  void set_waker(std::size_t shard, Waker fn, void* ctx);

  // ---- Sender side: shard `from`'s thread. ----

  // Stages a copy of `m` (with m.from set to `from`) for `to`, unpublished until flush(from).
  // False when ring [from][to] is full (counted in `refused`): nothing was staged; flush, let
  // `to` drain, retry later.
  bool send(std::size_t from, std::size_t to, const ShardMessage& m);

  // Publishes everything `from` staged, one store per destination ring, and wakes each of those
  // destinations that is asleep. Cheap when nothing was staged.
  void flush(std::size_t from);

  // ---- Receiver side: shard `to`'s thread. ----

  // Copies up to `max` published messages for `to` into `out` and frees their slots. Sources are
  // served round-robin, starting one further each call, each first up to its share of `max`;
  // messages from one source come out in the order they were sent. Returns how many.
  std::size_t receive(std::size_t to, ShardMessage* out, std::size_t max);

  // Whether any published message for `to` is waiting. Part of the sleep protocol (above).
  bool has_messages(std::size_t to);

  // The sleep protocol (above): prepare_sleep, then has_messages, then cancel_sleep or sleep
  // and wake_done.
  void prepare_sleep(std::size_t shard);
  void cancel_sleep(std::size_t shard);
  void wake_done(std::size_t shard);

  // Shard `from` died (shards as processes) and is about to be started again: what it staged
  // and never published is dropped, so its replacement starts with clean send state. Call only
  // while no process runs as `from`.
  void drop_staged(std::size_t from);

  // Whether `shard` has said it is asleep (for tests and diagnostics).
  bool asleep(std::size_t shard) const;

  // ---- Any thread. ----
  MailboxStats stats(std::size_t shard) const;

 private:
  // What senders read about a receiver: its sleep flag and how to wake it. One cache line per
  // shard; written by the receiver only around sleeps (and by one sender per sleep, to clear it).
  struct alignas(kCacheLine) SleepState {
    std::atomic<std::uint32_t> asleep{0};
    Waker waker = nullptr;
    void* waker_ctx = nullptr;
  };

  // State only shard i's thread touches (the counters are also read by stats()).
  struct alignas(kCacheLine) Local {
    std::size_t next_source = 0;     // where receive() starts its round-robin
    std::size_t dirty_count = 0;     // destinations with staged, unpublished messages
    std::uint32_t* dirty = nullptr;  // their indices; shards_ entries
    std::atomic<std::uint64_t> sent{0};
    std::atomic<std::uint64_t> received{0};
    std::atomic<std::uint64_t> wakeups{0};
    std::atomic<std::uint64_t> refused{0};
  };

  Ring& ring(std::size_t from, std::size_t to) { return rings_[from * shards_ + to]; }
  static std::size_t region_bytes(std::size_t shards, std::size_t capacity);

  const std::size_t shards_;
  const std::size_t capacity_;
  SharedRegion region_;             // everything below lives in it
  Ring* rings_;                     // [from * shards_ + to]; the diagonal is built but unused
  SleepState* sleep_;
  Local* local_;
  std::uint32_t* dirty_storage_;    // shards_ × shards_, sliced into Local::dirty
};

}  // namespace mnv
