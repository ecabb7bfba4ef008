// shard/shared_memory.h — memory every shard sees, whether the shards are threads or processes.
//
// Shards run as threads of one process or as processes of their own (ShardMode, shard/shard.h).
// Processes share only what was mapped MAP_SHARED before they were forked: the mailboxes, and
// whatever an app's shards tell each other outside messages (apps/echo: the port shard 0 bound,
// which the others listen on too). SharedRegion is such a mapping, made up front and carved by
// a bump allocator; SharedObject<T> is one T in a region of its own. Both work the same with
// thread shards, so an app writes its cross-shard state once for both modes.
//
// Only lock-free atomics and plain data belong here: a std::mutex or a pointer into one
// process's private memory (its heap, its stack, a std::string's buffer) means nothing in the
// others.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <new>
#include <utility>

#include "mem/log.h"

namespace mnv {

class SharedRegion {
 public:
  // An anonymous MAP_SHARED mapping of at least `bytes` (zeroed, and populated now, so no page
  // fault lands on a shard's first use of it); dies on failure (it is made at start-up, before
  // any shard runs, and is small).
  explicit SharedRegion(std::size_t bytes) : bytes_(bytes == 0 ? 1 : bytes) {
    void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) panic("mnv: shared mapping of %zu bytes failed", bytes_);
    base_ = static_cast<char*>(p);
  }
  ~SharedRegion() { ::munmap(base_, bytes_); }
  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;

  // The next `bytes` at `align` (a power of two); the region must have room (asserted: its size
  // is computed from the same layout by whoever makes it).
  void* take(std::size_t bytes, std::size_t align) {
    std::size_t at = (used_ + align - 1) & ~(align - 1);
    MNV_ASSERT(at + bytes <= bytes_);
    used_ = at + bytes;
    return base_ + at;
  }
  // Constructs a T (or `count` of them) in the region. Destroying them is the caller's business.
  template <typename T, typename... Args>
  T* make(Args&&... args) {
    return new (take(sizeof(T), alignof(T))) T(std::forward<Args>(args)...);
  }
  template <typename T>
  T* make_array(std::size_t count) {
    T* p = static_cast<T*>(take(sizeof(T) * count, alignof(T)));
    for (std::size_t i = 0; i < count; ++i) new (p + i) T();
    return p;
  }

  // Bytes a layout needs: add each piece's size and alignment in the order they will be taken.
  static std::size_t grow(std::size_t size, std::size_t bytes, std::size_t align) {
    return ((size + align - 1) & ~(align - 1)) + bytes;
  }

 private:
  char* base_;
  std::size_t bytes_;
  std::size_t used_ = 0;
};

template <typename T>
class SharedObject {
 public:
  template <typename... Args>
  explicit SharedObject(Args&&... args) : region_(sizeof(T)) {
    object_ = region_.make<T>(std::forward<Args>(args)...);
  }
  ~SharedObject() { object_->~T(); }
  SharedObject(const SharedObject&) = delete;
  SharedObject& operator=(const SharedObject&) = delete;

  T& operator*() const { return *object_; }
  T* operator->() const { return object_; }
  T* get() const { return object_; }

 private:
  SharedRegion region_;
  T* object_;
};

}  // namespace mnv
