#include "runtime/kernel.h"

#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "mem/log.h"
#include "mem/page.h"

namespace mnv {

namespace {

constinit thread_local Kernel* tl_kernel = nullptr;

// Signals: the handler only sets a flag and wakes every live kernel's poller.
constexpr int kMaxKernels = 1024;
std::atomic<Poller*> g_pollers[kMaxKernels];
std::atomic<bool> g_stop_requested{false};

void on_stop_signal(int) {
  g_stop_requested.store(true, std::memory_order_relaxed);
  for (auto& p : g_pollers) {
    if (Poller* poller = p.load(std::memory_order_acquire)) poller->wake();
  }
}

constexpr int kSlotShift = 36;  // timer cookie: slot << 36 | thread offset in its heap
constexpr std::uint64_t kOffsetMask = (std::uint64_t{1} << kSlotShift) - 1;

}  // namespace

std::int64_t monotonic_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void cancel_kernel_timer(std::uint32_t timer) {
  if (timer != 0 && tl_kernel != nullptr) tl_kernel->cancel_timer(timer);
}

struct Kernel::Slot {
  Process* proc;      // null: free
  Heap* heap;
  HeapPool* pool;
  std::int32_t fd_head;     // first fd it owns, -1 none
  std::uint32_t next_free;  // free list
  std::uint64_t last_turn;  // loop turn of its last dispatch
  bool queued;
  bool listener;
};

struct Kernel::FdEntry {
  std::uint32_t owner;    // slot, 0 = none
  std::uint32_t wanted;   // events registered with the poller
  std::uint32_t scratch;  // wanted, being recomputed by flush()
  std::uint32_t pending;  // events reported while no thread waited for them (edge-triggered
                          // pollers report them once): the next waiter is readied at once
  std::int32_t next;      // the owner's fd list
  std::int32_t prev;
};

Kernel* Kernel::current() { return tl_kernel; }

Kernel::Kernel(const KernelConfig& config)
    : config_(config),
      heap_(pages_for((sizeof(Slot) * (config.max_processes + 1) + sizeof(FdEntry) * config.max_fds +
                       sizeof(std::uint32_t) * (config.max_processes + 1) + 40 * config.max_timers) * 13 / 10) +
            16),
      timers_(heap_, config.max_timers) {}

std::unique_ptr<Kernel> Kernel::create(const KernelConfig& config) {
  check_page_size();
  std::unique_ptr<Kernel> k(new Kernel(config));
  if (!k->init()) return nullptr;
  return k;
}

bool Kernel::init() {
  if (!heap_.ok() || !timers_.ok()) {
    log_line("mnv: kernel heap or timer table could not be reserved");
    return false;
  }
  // Tables are zero pages from mmap: all-zero is the valid empty state, so nothing is touched
  // until used.
  slots_ = static_cast<Slot*>(heap_.heap().allocate(sizeof(Slot) * (config_.max_processes + 1)));
  fds_ = static_cast<FdEntry*>(heap_.heap().allocate(sizeof(FdEntry) * config_.max_fds));
  runq_ = static_cast<std::uint32_t*>(heap_.heap().allocate(sizeof(std::uint32_t) * (config_.max_processes + 1)));
  if (slots_ == nullptr || fds_ == nullptr || runq_ == nullptr) {
    log_line("mnv: kernel tables do not fit the kernel heap");
    return false;
  }
  poller_ = Poller::create(config_.poller, config_.max_fds);
  if (poller_ == nullptr) {
    log_line("mnv: no poller could be created: errno %d", errno);
    return false;
  }
  if (config_.completion_io) completion_io_ = poller_->completion_io();
  for (auto& p : g_pollers) {
    Poller* expected = nullptr;
    if (p.compare_exchange_strong(expected, poller_.get())) break;
  }
  return true;
}

Kernel::~Kernel() {
  for (auto& p : g_pollers) {
    Poller* expected = poller_.get();
    p.compare_exchange_strong(expected, nullptr);
  }
  Kernel* saved = tl_kernel;
  tl_kernel = this;
  for (std::uint32_t s = 1; s <= slots_used_ && slots_ != nullptr; ++s) {
    if (slots_[s].proc != nullptr) reclaim(s);
  }
  tl_kernel = saved;
}

void Kernel::install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, nullptr);
}

Process* Kernel::new_process(HeapPool& pool) {
  // Returned slots are reused first; fresh ones are taken in order, so untouched table pages
  // stay untouched.
  std::uint32_t slot = free_slot_;
  if (slot != 0) {
    free_slot_ = slots_[slot].next_free;
  } else {
    if (slots_used_ >= config_.max_processes) return nullptr;
    slot = ++slots_used_;
  }
  Heap* heap = pool.acquire();
  Process* p = heap == nullptr ? nullptr : Process::create(heap);
  if (p == nullptr) {
    if (heap != nullptr) pool.release(heap);
    slots_[slot].next_free = free_slot_;
    free_slot_ = slot;
    return nullptr;
  }
  p->set_kernel_slot(slot);
  slots_[slot] = Slot{p, heap, &pool, -1, 0, turns_, false, false};
  ++live_;
  enqueue(slot);
  return p;
}

void Kernel::mark_listener(Process* p) { slots_[p->kernel_slot()].listener = true; }

void Kernel::own(int fd, std::uint32_t slot) {
  MNV_ASSERT(fd >= 0 && static_cast<std::size_t>(fd) < config_.max_fds);
  FdEntry& e = fds_[fd];
  if (e.owner == slot) return;
  if (e.owner != 0) disown(fd);
  Slot& s = slots_[slot];
  e.owner = slot;
  e.prev = -1;
  e.next = s.fd_head;
  if (s.fd_head >= 0) fds_[s.fd_head].prev = fd;
  s.fd_head = fd;
}

void Kernel::disown(int fd) {
  FdEntry& e = fds_[fd];
  if (e.owner == 0) return;
  Slot& s = slots_[e.owner];
  if (e.prev >= 0) {
    fds_[e.prev].next = e.next;
  } else {
    s.fd_head = e.next;
  }
  if (e.next >= 0) fds_[e.next].prev = e.prev;
  e = FdEntry{0, e.wanted, 0, 0, -1, -1};
}

void Kernel::adopt_fd(int fd, Process* p) {
  if (p == nullptr) p = &this_process();
  MNV_ASSERT(p->kernel_slot() != 0);
  if (fd < 0 || static_cast<std::size_t>(fd) >= config_.max_fds) {
    panic("mnv: fd %d beyond the kernel's fd table (%zu): raise max_fds", fd, config_.max_fds);
  }
  own(fd, p->kernel_slot());
}

void Kernel::close_fd(int fd) {
  if (fd < 0) return;
  if (static_cast<std::size_t>(fd) < config_.max_fds) {
    disown(fd);
    fds_[fd].wanted = 0;
  }
  poller_->forget(fd);
  ::close(fd);
}

void Kernel::enqueue(std::uint32_t slot) {
  Slot& s = slots_[slot];
  if (s.queued) return;
  s.queued = true;
  runq_[(runq_head_ + runq_len_) % (config_.max_processes + 1)] = slot;
  ++runq_len_;
}

void Kernel::dispatch(std::uint32_t slot) {
  Slot& s = slots_[slot];
  s.queued = false;
  if (s.proc == nullptr) return;
  s.proc->dispatch();
  s.last_turn = turns_;
  ++dispatches_;
  flush(slot);
  if (s.proc->thread_count() == 0) reclaim(slot);
}

void Kernel::flush(std::uint32_t slot) {
  Slot& s = slots_[slot];
  for (std::int32_t fd = s.fd_head; fd >= 0; fd = fds_[fd].next) fds_[fd].scratch = 0;
  s.proc->blocked().for_each([&](ThreadState* t) {
    Block* b = t->block;
    if (b == nullptr) return;
    if (b->fd >= 0) {
      FdEntry& e = fds_[b->fd];
      if (e.owner != slot) own(b->fd, slot);
      std::uint32_t hit = e.pending & (b->events | POLLERR | POLLHUP);
      if (hit != 0) {  // it already happened
        b->revents = e.pending;
        e.pending &= ~b->events;
        s.proc->ready(t);
        enqueue(slot);
        return;
      }
      e.scratch |= b->events;
    }
    if (b->deadline_ns != 0 && b->timer == 0 && !b->timed_out) {
      auto offset = static_cast<std::uint64_t>(reinterpret_cast<char*>(t) - reinterpret_cast<char*>(s.heap));
      MNV_ASSERT(offset <= kOffsetMask);
      b->timer = timers_.add(b->deadline_ns, (std::uint64_t{slot} << kSlotShift) | offset);
      if (b->timer == TimerHeap::kNone) {
        log_line("mnv: kernel timer table full (%zu): raise max_timers", config_.max_timers);
        t->raise_in(Error{.code = ENOMEM});
        enqueue(slot);
      }
    }
  });
  for (std::int32_t fd = s.fd_head; fd >= 0; fd = fds_[fd].next) {
    FdEntry& e = fds_[fd];
    if (e.scratch != e.wanted) {
      poller_->interest(fd, e.scratch);
      e.wanted = e.scratch;
    }
  }
}

void Kernel::reclaim(std::uint32_t slot) {
  Slot& s = slots_[slot];
  MNV_ASSERT(s.proc != nullptr);
  Kernel* saved = tl_kernel;
  tl_kernel = this;
  s.proc->destroy();  // ends every thread; their sockets close their fds through close_fd()
  while (s.fd_head >= 0) close_fd(s.fd_head);
  s.pool->release(s.heap);
  s.proc = nullptr;
  s.listener = false;
  s.next_free = free_slot_;
  free_slot_ = slot;
  --live_;
  tl_kernel = saved;
}

void Kernel::on_fd_event(int fd, std::uint32_t events) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= config_.max_fds) return;
  std::uint32_t slot = fds_[fd].owner;
  if (slot == 0) return;
  Process* p = slots_[slot].proc;
  std::uint32_t taken = 0;
  p->blocked().for_each([&](ThreadState* t) {
    Block* b = t->block;
    if (b == nullptr || b->fd != fd) return;
    if ((events & (b->events | POLLERR | POLLHUP)) == 0) return;
    b->revents = events;
    p->ready(t);
    taken |= b->events;
  });
  fds_[fd].pending |= events & ~taken;
  if (taken != 0) enqueue(slot);
}

void Kernel::on_timer(std::uint64_t cookie) {
  auto slot = static_cast<std::uint32_t>(cookie >> kSlotShift);
  Slot& s = slots_[slot];
  MNV_ASSERT(s.proc != nullptr);
  auto* t = reinterpret_cast<ThreadState*>(reinterpret_cast<char*>(s.heap) + (cookie & kOffsetMask));
  MNV_ASSERT(t->block != nullptr && t->status == ThreadState::Status::kBlocked);
  t->block->timer = 0;
  t->block->timed_out = true;
  s.proc->ready(t);
  enqueue(slot);
}

void Kernel::trim_idle() {
  // A process that has not run since the previous pass is idle: it gives back what it kept
  // for while it was busy (its sockets' rings), then its heap returns the pages above its top,
  // so an idle connection keeps only what it holds.
  for (std::uint32_t slot = 1; slot <= slots_used_; ++slot) {
    Slot& s = slots_[slot];
    if (s.proc != nullptr && s.last_turn < trim_turn_) {
      s.proc->release_idle();
      s.heap->trim();
    }
  }
  trim_turn_ = turns_;
}

void Kernel::begin_shutdown() {
  if (stopping_) return;
  stopping_ = true;
  stop_deadline_ = now_ + config_.grace_ns;
  for (std::uint32_t slot = 1; slot <= slots_used_; ++slot) {
    if (slots_[slot].proc != nullptr && slots_[slot].listener) reclaim(slot);
  }
}

void Kernel::stop() { begin_shutdown(); }

void Kernel::request_stop() {
  stop_requested_.store(true, std::memory_order_release);
  poller_->wake();
}

int Kernel::run() {
  Kernel* saved = tl_kernel;
  tl_kernel = this;
  now_ = monotonic_ns();
  next_trim_ = now_ + config_.trim_interval_ns;
  constexpr int kMaxEvents = 256;
  PollEvent events[kMaxEvents];
  for (;;) {
    ++turns_;
    if (g_stop_requested.load(std::memory_order_relaxed) || stop_requested_.load(std::memory_order_acquire)) {
      begin_shutdown();
    }
    while (runq_len_ > 0) {
      std::uint32_t slot = runq_[runq_head_];
      runq_head_ = (runq_head_ + 1) % (config_.max_processes + 1);
      --runq_len_;
      dispatch(slot);
    }
    if (stopping_ && (live_ == 0 || now_ >= stop_deadline_)) break;
    if (!stopping_ && config_.exit_when_idle && live_ == 0) break;
    std::int64_t deadline = timers_.next_deadline();
    if (next_trim_ < deadline) deadline = next_trim_;
    if (stopping_ && stop_deadline_ < deadline) deadline = stop_deadline_;
    std::int64_t timeout = deadline - now_;
    if (timeout < 0) timeout = 0;
    int n = poller_->wait(timeout, events, kMaxEvents);
    now_ = monotonic_ns();
    for (int i = 0; i < n; ++i) on_fd_event(events[i].fd, events[i].events);
    timers_.expire(now_, [this](std::uint64_t cookie) { on_timer(cookie); });
    if (now_ >= next_trim_) {
      trim_idle();
      next_trim_ = now_ + config_.trim_interval_ns;
    }
  }
  for (std::uint32_t slot = 1; live_ > 0 && slot <= slots_used_; ++slot) {
    if (slots_[slot].proc != nullptr) reclaim(slot);
  }
  tl_kernel = saved;
  return 0;
}

}  // namespace mnv
