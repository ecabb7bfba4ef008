#include "runtime/timer_heap.h"

#include "mem/log.h"

namespace mnv {

TimerHeap::TimerHeap(KernelHeap& heap, std::size_t capacity) : capacity_(capacity) {
  MNV_ASSERT(capacity >= 1 && capacity < (std::size_t{1} << kIndexBits));
  entries_ = static_cast<Entry*>(heap.heap().allocate(sizeof(Entry) * capacity));
  slots_ = static_cast<Slot*>(heap.heap().allocate(sizeof(Slot) * (capacity + 1)));
  if (entries_ == nullptr || slots_ == nullptr) {
    heap.heap().free(entries_);
    heap.heap().free(slots_);
    entries_ = nullptr;
    return;
  }
  // Slots are handed out in order and only then touched (free_head_ == 0: take the next unused),
  // so a large capacity costs no memory until used.
  free_head_ = 0;
  unused_ = 1;
}

TimerHeap::Id TimerHeap::add(std::int64_t deadline_ns, std::uint64_t cookie) {
  std::uint32_t index;
  if (free_head_ != 0) {
    index = free_head_;
    free_head_ = slots_[index].pos;
  } else {
    if (unused_ > capacity_) return kNone;
    index = unused_++;
    slots_[index].gen = 0;
  }
  slots_[index].cookie = cookie;
  slots_[index].live = true;
  slots_[index].gen = (slots_[index].gen + 1) & ((1u << (32 - kIndexBits)) - 1);
  if (slots_[index].gen == 0) slots_[index].gen = 1;  // an id is never kNone
  place(size_, Entry{deadline_ns, index});
  sift_up(size_++);
  return make_id(index);
}

void TimerHeap::cancel(Id id) {
  if (id == kNone) return;
  std::uint32_t index = id & ((1u << kIndexBits) - 1);
  MNV_ASSERT(index >= 1 && index <= capacity_);
  if (!slots_[index].live || make_id(index) != id) return;
  remove_at(slots_[index].pos);
}

void TimerHeap::remove_at(std::size_t pos) {
  MNV_ASSERT(pos < size_);
  std::uint32_t index = entries_[pos].index;
  slots_[index].live = false;
  slots_[index].pos = free_head_;
  free_head_ = index;
  --size_;
  if (pos == size_) return;
  Entry last = entries_[size_];
  place(pos, last);
  if (pos > 0 && entries_[(pos - 1) / 4].deadline > last.deadline) {
    sift_up(pos);
  } else {
    sift_down(pos);
  }
}

void TimerHeap::sift_up(std::size_t pos) {
  Entry e = entries_[pos];
  while (pos > 0) {
    std::size_t parent = (pos - 1) / 4;
    if (entries_[parent].deadline <= e.deadline) break;
    place(pos, entries_[parent]);
    pos = parent;
  }
  place(pos, e);
}

void TimerHeap::sift_down(std::size_t pos) {
  Entry e = entries_[pos];
  for (;;) {
    std::size_t first = pos * 4 + 1;
    if (first >= size_) break;
    std::size_t best = first;
    std::size_t end = first + 4 < size_ ? first + 4 : size_;
    for (std::size_t c = first + 1; c < end; ++c) {
      if (entries_[c].deadline < entries_[best].deadline) best = c;
    }
    if (entries_[best].deadline >= e.deadline) break;
    place(pos, entries_[best]);
    pos = best;
  }
  place(pos, e);
}

}  // namespace mnv
