#include "mem/heap.h"

#include <sys/mman.h>

#include <cerrno>
#include <new>

#include "mem/critical_section.h"
#include "mem/log.h"
#include "mem/page.h"

namespace mnv {

namespace {
constexpr std::uint64_t kHeapMagic = 0x6d6e766865617021ull;  // "mnvheap!"
constexpr std::uint16_t kUsed = 0xB10C;
constexpr std::uint16_t kFree = 0xF4EE;
constexpr std::size_t kMinBlock = 32;
constexpr std::size_t round_up(std::size_t n, std::size_t a) { return (n + a - 1) & ~(a - 1); }
}  // namespace

// 16 bytes in front of every block's payload.
struct Heap::Block {
  std::uint32_t size;       // whole block, header included
  std::uint32_t prev_size;  // size of the block just below (0 for the first)
  std::uint16_t cls;
  std::uint16_t state;
  std::uint32_t owner_offset;  // distance back to the Heap header, in kAlign units
  char* payload() { return reinterpret_cast<char*>(this) + sizeof(Block); }
  Block* prev() { return reinterpret_cast<Block*>(reinterpret_cast<char*>(this) - prev_size); }
};

// Lives in a free block's payload: the doubly linked free list of its class.
struct Heap::FreeNode {
  FreeNode* next;
  FreeNode* prev;
};

int Heap::size_class(std::size_t n) {
  if (n <= 256) return n <= kMinBlock ? 0 : static_cast<int>(round_up(n, 16) / 16) - 2;
  int k = 63 - __builtin_clzll(static_cast<unsigned long long>(n - 1));  // 2^k < n <= 2^(k+1)
  std::size_t step = std::size_t{1} << (k - 2);
  std::size_t idx = (n - (std::size_t{1} << k) + step - 1) / step;  // 1..4
  return 15 + (k - 8) * 4 + static_cast<int>(idx) - 1;
}

std::size_t Heap::class_bytes(int cls) {
  if (cls < 15) return static_cast<std::size_t>(cls + 2) * 16;
  int k = 8 + (cls - 15) / 4;
  std::size_t idx = (cls - 15) % 4 + 1;
  return (std::size_t{1} << k) + idx * (std::size_t{1} << (k - 2));
}

Heap* Heap::init(void* base, std::size_t pages) {
  static_assert(sizeof(Block) == kAlign);
  MNV_ASSERT(reinterpret_cast<std::uintptr_t>(base) % kPageSize == 0);
  MNV_ASSERT(pages >= 1 && pages * kPageSize < (std::size_t{1} << 36));
  Heap* h = new (base) Heap();
  h->magic_ = kHeapMagic;
  h->pages_ = pages;
  h->end_ = static_cast<char*>(base) + pages * kPageSize;
  h->reset();
  return h;
}

std::size_t Heap::bytes() const { return pages_ * kPageSize; }
std::size_t Heap::high_water_pages() const { return pages_for(high_water_); }

char* Heap::first_block() const {
  return reinterpret_cast<char*>(const_cast<Heap*>(this)) + round_up(sizeof(Heap), kAlign);
}

void Heap::reset() {
  MNV_ASSERT(magic_ == kHeapMagic);
  top_ = first_block();
  top_size_ = 0;
  used_ = 0;
  high_water_ = static_cast<std::size_t>(top_ - reinterpret_cast<char*>(this));
  needed_pages_ = 0;
  live_blocks_ = 0;
  for (auto& f : free_) f = 0;
}

std::size_t Heap::trim() {
  std::size_t top = static_cast<std::size_t>(top_ - reinterpret_cast<char*>(this));
  std::size_t keep = pages_for(top);
  std::size_t touched = pages_for(high_water_);
  high_water_ = top;
  if (touched <= keep) return 0;
  ::madvise(reinterpret_cast<char*>(this) + keep * kPageSize, (touched - keep) * kPageSize, MADV_DONTNEED);
  return touched - keep;
}

void* Heap::allocate(std::size_t bytes) {
  CriticalSection cs;  // (a runaway trap must not leave a block half split)
  std::size_t want = bytes + sizeof(Block);
  if (want < bytes || want > (std::size_t{1} << 31)) {
    needed_pages_ = pages_for(want);
    errno = ENOMEM;
    return nullptr;
  }
  int cls = size_class(want);
  std::size_t size = class_bytes(cls);
  Block* b;
  if (FreeNode* n = free_head(cls)) {
    b = reinterpret_cast<Block*>(reinterpret_cast<char*>(n) - sizeof(Block));
    MNV_ASSERT(b->state == kFree && b->cls == cls);
    unlink_free(b);
  } else {
    if (static_cast<std::size_t>(end_ - top_) < size) {
      needed_pages_ = pages_for(static_cast<std::size_t>(top_ - reinterpret_cast<char*>(this)) + size);
      errno = ENOMEM;
      return nullptr;
    }
    b = reinterpret_cast<Block*>(top_);
    b->size = static_cast<std::uint32_t>(size);
    b->prev_size = top_size_;
    b->cls = static_cast<std::uint16_t>(cls);
    b->owner_offset = static_cast<std::uint32_t>((reinterpret_cast<char*>(b) - reinterpret_cast<char*>(this)) / kAlign);
    top_ += size;
    top_size_ = static_cast<std::uint32_t>(size);
    std::size_t off = static_cast<std::size_t>(top_ - reinterpret_cast<char*>(this));
    if (off > high_water_) high_water_ = off;
  }
  b->state = kUsed;
  used_ += size;
  ++live_blocks_;
  return b->payload();
}

Heap* Heap::owner(const void* p) {
  auto* b = reinterpret_cast<const Block*>(static_cast<const char*>(p) - sizeof(Block));
  auto* h = reinterpret_cast<Heap*>(const_cast<char*>(reinterpret_cast<const char*>(b)) -
                                    std::size_t{b->owner_offset} * kAlign);
  MNV_ASSERT(h->magic_ == kHeapMagic);
  return h;
}

Heap::FreeNode* Heap::free_head(int cls) const {
  if (free_[cls] == 0) return nullptr;
  return reinterpret_cast<FreeNode*>(reinterpret_cast<char*>(const_cast<Heap*>(this)) + std::size_t{free_[cls]} * kAlign);
}

void Heap::set_free_head(int cls, FreeNode* n) {
  free_[cls] = n == nullptr ? 0 : static_cast<std::uint32_t>((reinterpret_cast<char*>(n) - reinterpret_cast<char*>(this)) / kAlign);
}

void Heap::unlink_free(Block* b) {
  auto* n = reinterpret_cast<FreeNode*>(b->payload());
  if (n->prev != nullptr) {
    n->prev->next = n->next;
  } else {
    set_free_head(b->cls, n->next);
  }
  if (n->next != nullptr) n->next->prev = n->prev;
}

void Heap::push_free(Block* b) {
  b->state = kFree;
  auto* n = reinterpret_cast<FreeNode*>(b->payload());
  n->prev = nullptr;
  n->next = free_head(b->cls);
  if (n->next != nullptr) n->next->prev = n;
  set_free_head(b->cls, n);
}

void Heap::free(void* p) {
  CriticalSection cs;
  if (p == nullptr) return;
  MNV_ASSERT(contains(p));
  auto* b = reinterpret_cast<Block*>(static_cast<char*>(p) - sizeof(Block));
  if (b->state != kUsed) panic("mnv heap %p: free of %p that is not an allocated block", this, p);
  used_ -= b->size;
  --live_blocks_;
  if (reinterpret_cast<char*>(b) + b->size == top_) {
    // Stack order: lower top, then over any free blocks just beneath it.
    for (;;) {
      top_ = reinterpret_cast<char*>(b);
      top_size_ = b->prev_size;
      b->state = 0;
      if (b->prev_size == 0) break;
      Block* below = b->prev();
      if (below->state != kFree) break;
      unlink_free(below);
      b = below;
    }
    return;
  }
  push_free(b);
}

}  // namespace mnv
