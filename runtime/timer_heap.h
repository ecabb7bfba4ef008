// runtime/timer_heap.h — the virtual kernel's deadlines: a fixed-capacity 4-ary min-heap.
//
// Every blocking op may carry a deadline, and most complete before it, so cancel must be as cheap
// as add: O(log n) each, through stable ids that map to heap positions. Capacity is fixed at
// creation (TigerStyle: no unbounded growth); a full heap refuses the timer and the op fails with
// ENOMEM instead of growing. The arrays live in the kernel heap, never in a process's heap, so
// firing a timer never touches a protected micro-heap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "mem/kernel_heap.h"

namespace mnv {

class TimerHeap {
 public:
  using Id = std::uint32_t;
  static constexpr Id kNone = 0;
  static constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

  // Arrays for `capacity` timers from `heap`; check ok().
  TimerHeap(KernelHeap& heap, std::size_t capacity);
  bool ok() const { return entries_ != nullptr; }

  // Adds a timer; kNone when full.
  Id add(std::int64_t deadline_ns, std::uint64_t cookie);
  // Cancels a live timer. kNone, and the id of a timer that already fired or was cancelled (ids
  // carry a generation, so a reused slot is never hit), are ignored.
  void cancel(Id id);
  // Earliest deadline, or kNever.
  std::int64_t next_deadline() const { return size_ == 0 ? kNever : entries_[0].deadline; }
  // Removes every timer due at `now_ns` (deadline <= now), earliest first, calling
  // fire(cookie, id).
  template <typename F>
  std::size_t expire(std::int64_t now_ns, F&& fire) {
    std::size_t n = 0;
    while (size_ > 0 && entries_[0].deadline <= now_ns) {
      std::uint32_t index = entries_[0].index;
      std::uint64_t cookie = slots_[index].cookie;
      Id id = make_id(index);
      remove_at(0);
      fire(cookie, id);
      ++n;
    }
    return n;
  }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }

 private:
  static constexpr int kIndexBits = 20;  // capacity < 2^20; the rest of an id is a generation
  struct Entry {
    std::int64_t deadline;
    std::uint32_t index;  // into slots_
  };
  struct Slot {
    std::uint64_t cookie;
    std::uint32_t pos;   // index in entries_, or the next free slot while free
    std::uint32_t gen;
    bool live;
  };
  Id make_id(std::uint32_t index) const { return (slots_[index].gen << kIndexBits) | index; }
  void remove_at(std::size_t pos);
  void sift_up(std::size_t pos);
  void sift_down(std::size_t pos);
  void place(std::size_t pos, Entry e) {
    entries_[pos] = e;
    slots_[e.index].pos = static_cast<std::uint32_t>(pos);
  }

  Entry* entries_ = nullptr;
  Slot* slots_ = nullptr;  // slots_[0] unused: id 0 is kNone
  std::size_t capacity_ = 0;
  std::size_t size_ = 0;
  std::uint32_t free_head_ = 0;  // 0: no freed slot
  std::uint32_t unused_ = 1;     // slots from here on have never been used
};

}  // namespace mnv
