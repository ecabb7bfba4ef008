// shard/spsc_ring.h — a fixed-capacity, lock-free, single-producer single-consumer ring.
//
// The building block of the cross-shard mailboxes (shard/mailbox.h): one OS thread pushes
// trivially-copyable messages, exactly one other OS thread pops them, and neither ever takes a
// lock, makes a system call or allocates after construction. Capacity is a power of two fixed at
// construction and the slots are allocated (and touched) once, up front; a full ring refuses a
// push (returns false) — it never drops a message and never grows (TigerStyle: no unbounded
// queues; the caller sees back-pressure).
//
// Layout, for the cost of a cross-core hand-off:
//  * the published write index and the published read index each sit alone on a cache line
//    (alignas(64)), so the producer's stores never invalidate the line the consumer writes, and
//    vice versa;
//  * each side keeps a private, cached copy of the other side's index and reloads it only when
//    the cached value says "full" (producer) or "empty" / "fewer than the batch asked for"
//    (consumer), so in steady state a side touches the other side's line once per batch, not
//    once per message;
//  * publication is batched: the producer stages any number of messages (try_stage) and makes
//    them visible with one release store (publish); the consumer reads and consumes a batch
//    (readable/peek/consume or pop_batch) and hands the slots back with one release store
//    (release). try_push / try_pop are the one-message forms.
//
// Memory ordering: a slot is written with plain stores before the release store of the write
// index that publishes it, and read after the acquire load that observes that index; the consumer
// is done with a slot before the release store of the read index that frees it, and the producer
// overwrites it only after the acquire load that observes that index. That is the whole protocol
// (it runs under ThreadSanitizer in shard/mailbox_test). publish() and readable() take an optional
// stronger order for callers that build a Dekker-style handshake on top (the mailbox sleep
// protocol).
//
// Hand-written, not a dependency: Debian bookworm has no Seastar-style SPSC queue with batched
// publication. Its closest packages were looked at and left out: libreaderwriterqueue-dev
// (moodycamel) publishes every element with its own release fence, is a list of blocks that
// enqueue() grows with malloc, and orders slots with standalone fences, which ThreadSanitizer does
// not model (false reports under --config=tsan); libck-dev's ck_ring also publishes per element,
// re-reads the other side's index on every call and fences with inline assembly, invisible to
// TSan. boost::lockfree::spsc_queue is not a dependency of this project (and also publishes per
// push). What is needed is this one small header.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>

#include "mem/log.h"

namespace mnv {

// One cache line on the x86-64 and arm64 cores we target.
inline constexpr std::size_t kCacheLine = 64;

template <typename T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "messages are copied bytewise between cores");

 public:
  // `capacity`: a power of two, at least 2. The slots are allocated and zeroed here (so no page
  // fault lands on the first pushes).
  explicit SpscRing(std::size_t capacity)
      : slots_(allocate(capacity)), mask_(capacity - 1), owned_(true) {}
  // The same over `capacity` slots at `slots` (zeroed, slot_align()-aligned, and outliving the
  // ring), which someone else owns: the mailboxes place slots and rings in one shared mapping.
  SpscRing(T* slots, std::size_t capacity) : slots_(slots), mask_(capacity - 1), owned_(false) {
    MNV_ASSERT(capacity >= 2 && (capacity & (capacity - 1)) == 0);
    MNV_ASSERT(reinterpret_cast<std::uintptr_t>(slots) % kSlotAlign == 0);
  }

  ~SpscRing() {
    if (owned_) ::operator delete(slots_, std::align_val_t{kSlotAlign});
  }

  static constexpr std::size_t slot_align() { return kSlotAlign; }

  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  std::size_t capacity() const { return mask_ + 1; }

  // ---- Producer side: one thread only. ----

  // Copies `v` into the next slot without publishing it. False (nothing written) when the ring
  // is full, counting staged-but-unpublished messages.
  bool try_stage(const T& v) {
    if (prod_.tail - prod_.head_cache == capacity()) {
      prod_.head_cache = head_.load(std::memory_order_acquire);
      if (prod_.tail - prod_.head_cache == capacity()) return false;
    }
    slots_[prod_.tail & mask_] = v;
    ++prod_.tail;
    return true;
  }

  // Makes every staged message visible to the consumer with one store. `order` is release, or
  // seq_cst for a caller whose next step is a seq_cst load that must not pass this store.
  void publish(std::memory_order order = std::memory_order_release) {
    tail_.store(prod_.tail, order);
    prod_.published = prod_.tail;
  }

  // try_stage + publish.
  bool try_push(const T& v) {
    if (!try_stage(v)) return false;
    publish();
    return true;
  }

  // Messages staged since the last publish().
  std::size_t unpublished() const { return prod_.tail - prod_.published; }

  // Forgets what was staged and not published. Only while no producer runs: a producer process
  // that died mid-turn, before its replacement starts (shards as processes).
  void drop_unpublished() { prod_.tail = prod_.published; }

  // ---- Consumer side: one thread only. ----

  // How many published messages are waiting, starting at peek(0). Reloads the producer's index
  // only when the cached copy says there are none. `order` is acquire, or seq_cst for a caller
  // that must not let this load pass an earlier seq_cst store (the mailbox sleep check).
  std::size_t readable(std::memory_order order = std::memory_order_acquire) {
    if (cons_.tail_cache == cons_.head) cons_.tail_cache = tail_.load(order);
    return cons_.tail_cache - cons_.head;
  }

  // The i-th waiting message; i < the last readable().
  const T& peek(std::size_t i) const {
    MNV_ASSERT(i < cons_.tail_cache - cons_.head);
    return slots_[(cons_.head + i) & mask_];
  }

  // Marks the first n waiting messages as read. Their slots stay the consumer's (the producer
  // cannot reuse them) until release().
  void consume(std::size_t n) {
    MNV_ASSERT(n <= cons_.tail_cache - cons_.head);
    cons_.head += n;
  }

  // Hands every consumed slot back to the producer with one store.
  void release() { head_.store(cons_.head, std::memory_order_release); }

  // Copies up to `max` waiting messages to `out` and consumes them (no release()). Returns how
  // many; 0 when empty. Reloads the producer's index when the cached copy knows of fewer than
  // `max`, so a batch takes everything published so far.
  std::size_t pop_batch(T* out, std::size_t max) {
    std::size_t n = cons_.tail_cache - cons_.head;
    if (n < max) {
      cons_.tail_cache = tail_.load(std::memory_order_acquire);
      n = cons_.tail_cache - cons_.head;
    }
    if (n > max) n = max;
    if (n == 0) return 0;
    std::size_t first = cons_.head & mask_;
    std::size_t run = capacity() - first;  // slots before the wrap
    if (run > n) run = n;
    std::memcpy(static_cast<void*>(out), &slots_[first], run * sizeof(T));
    if (n > run) std::memcpy(static_cast<void*>(out + run), &slots_[0], (n - run) * sizeof(T));
    cons_.head += n;
    return n;
  }

  // Pops one message and releases its slot. False when empty.
  bool try_pop(T* out) {
    if (readable() == 0) return false;
    *out = slots_[cons_.head & mask_];
    ++cons_.head;
    release();
    return true;
  }

 private:
  static constexpr std::size_t kSlotAlign = alignof(T) > kCacheLine ? alignof(T) : kCacheLine;

  static T* allocate(std::size_t capacity) {
    MNV_ASSERT(capacity >= 2 && (capacity & (capacity - 1)) == 0);
    void* p = ::operator new(capacity * sizeof(T), std::align_val_t{kSlotAlign});
    std::memset(p, 0, capacity * sizeof(T));
    return static_cast<T*>(p);  // T is trivially copyable: the zeroed bytes are valid objects
  }

  // Indices count messages since construction and are never wrapped (a slot is index & mask_);
  // differences stay correct across the 2^64 wrap, which no ring lives to see anyway.

  // Read-only after construction: shared by both sides without ever being written.
  T* const slots_;
  const std::size_t mask_;
  const bool owned_;

  // Published write index: stored by the producer, loaded by the consumer.
  alignas(kCacheLine) std::atomic<std::size_t> tail_{0};
  // Published read index: stored by the consumer, loaded by the producer.
  alignas(kCacheLine) std::atomic<std::size_t> head_{0};

  // Producer-private: next slot to write, the last write index it published, and the last read
  // index it saw.
  struct alignas(kCacheLine) Producer {
    std::size_t tail = 0;
    std::size_t published = 0;
    std::size_t head_cache = 0;
  } prod_;

  // Consumer-private: next slot to read, and the last write index it saw.
  struct alignas(kCacheLine) Consumer {
    std::size_t head = 0;
    std::size_t tail_cache = 0;
  } cons_;
};

}  // namespace mnv
