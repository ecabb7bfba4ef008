#include "runtime/kernel.h"

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "mem/log.h"
#include "mem/page.h"
#include "runtime/trap.h"
#include "runtime/wake_fd.h"

namespace mnv {

namespace {

constinit thread_local Kernel* tl_kernel = nullptr;

// Signals: the handler only sets a flag and wakes every live kernel's poller.
constexpr int kMaxKernels = 1024;
std::atomic<Poller*> g_pollers[kMaxKernels];
std::atomic<bool> g_stop_requested{false};
std::atomic<int> g_stop_fd{-1};

void on_stop_signal(int) {
  int saved = errno;
  g_stop_requested.store(true, std::memory_order_relaxed);
  for (auto& p : g_pollers) {
    if (Poller* poller = p.load(std::memory_order_acquire)) poller->wake();
  }
  if (int fd = g_stop_fd.load(std::memory_order_acquire); fd >= 0) {
    signal_wake_fd(fd);
  }
  errno = saved;
}

// What wakes a thread blocked for `events` on an fd: those, an error or hang-up, and a finished
// completion-mode transfer on the fd (its result waits to be taken; runtime/completion_io.h).
constexpr std::uint32_t wakes(std::uint32_t events) { return events | POLLERR | POLLHUP | kTransferDone; }

constexpr int kSlotShift = 36;  // timer cookie: slot << 36 | thread offset in its heap
constexpr std::uint64_t kOffsetMask = (std::uint64_t{1} << kSlotShift) - 1;

}  // namespace

void Kernel::drop_timer(Block* b) {
  std::uint32_t timer = std::exchange(b->timer, 0);
  if (tl_kernel != nullptr) tl_kernel->cancel_timer(timer);
}

struct Kernel::Slot {
  Process* proc;      // null: free
  Heap* heap;
  HeapPool* pool;
  std::int32_t fd_head;     // first fd it owns, -1 none
  std::uint32_t next_free;  // free list
  std::uint64_t last_turn;  // loop turn of its last dispatch
  std::uint32_t sup_id;     // who is told of its death (runtime/supervise.h); 0 = nobody,
  std::uint32_t sup_gen;    // and valid only while that entry's generation still matches
  std::uint32_t fired_head;  // fired timers not yet delivered (index + 1 into fired_)
  std::uint32_t fd_count;
  bool queued;
  bool listener;
  bool fresh;   // some fd it owns has undelivered events
  bool open;    // its heap is accessible (isolation modes)
  bool trimmed; // idle, and already trimmed since it last ran
  std::uint32_t sups;  // supervisor entries of its threads (list through SupervisorEntry::next)
  std::uint32_t pages;  // its heap's pages as last counted in heap_pages_ (metrics)
};

// A supervising thread. Its deaths wait in death_rings_[(id - 1) * death_queue ...] until its
// process is dispatched; the thread is read only then (its heap is open).
struct Kernel::SupervisorEntry {
  ThreadState* thread;    // in slot's heap
  std::uint64_t dropped;  // deaths lost to a full ring since the last one handed over
  std::uint32_t slot;     // its process; 0 = free
  std::uint32_t gen;      // bumped when freed: stale handles and children's links stop matching
  std::uint32_t next;     // the process's next entry, or the free list
  std::uint32_t head;     // ring of queued deaths
  std::uint32_t count;
  std::uint32_t children; // live processes it supervises (when the kernel stops and this reaches
                          // 0, a waiting reap() returns an empty Death: nothing is left to watch)
};

struct Kernel::FdEntry {
  std::uint32_t owner;    // slot, 0 = none
  std::uint32_t wanted;   // events registered with the poller
  std::uint32_t scratch;  // wanted, being recomputed by flush()
  std::uint32_t pending;  // events reported while no thread waited for them (edge-triggered
                          // pollers report them once): the next waiter is readied at once
  std::uint32_t fresh;    // events reported since the owner's last dispatch, not yet delivered
  std::int32_t next;      // the owner's fd list
  std::int32_t prev;
};

Kernel* Kernel::current() { return tl_kernel; }

void Kernel::count_bytes_in(std::size_t n) {
  if (tl_kernel != nullptr) tl_kernel->bytes_in_ += n;
}

void Kernel::count_bytes_out(std::size_t n) {
  if (tl_kernel != nullptr) tl_kernel->bytes_out_ += n;
}

void Kernel::publish_metrics() {
  const KernelMetrics* m = config_.kernel_metrics;
  if (m == nullptr) return;
  const metrics::ShardCells& c = config_.metrics;
  auto add = [&c](metrics::Counter id, std::uint64_t now, std::uint64_t* last) {
    if (now != *last) c.add(id, now - *last);
    *last = now;
  };
  const Poller::Counts& pc = poller_->counts();
  add(m->loop_turns, turns_, &published_.turns);
  add(m->dispatches, dispatches_, &published_.dispatches);
  add(m->poller_submissions, pc.submitted, &published_.submitted);
  add(m->poller_completions, pc.completed, &published_.completed);
  add(m->bytes_in, bytes_in_ + pc.bytes_in, &published_.bytes_in);
  add(m->bytes_out, bytes_out_ + pc.bytes_out, &published_.bytes_out);
  add(m->processes_reclaimed, reclaimed_, &published_.reclaimed);
  for (int i = 0; i < KernelMetrics::kTrapKinds; ++i) add(m->traps[i], traps_[i], &published_.traps[i]);
  c.set(m->heap_pages, heap_pages_);
  c.set(m->processes, static_cast<std::int64_t>(live_));
  publish_at_ = INT64_MAX;
}

void Kernel::count_heap_pages(std::uint32_t slot) {
  if (config_.kernel_metrics == nullptr) return;
  Slot& s = slots_[slot];
  auto pages = static_cast<std::uint32_t>(pages_for(s.heap->high_water_bytes()));
  heap_pages_ += static_cast<std::int64_t>(pages) - static_cast<std::int64_t>(s.pages);
  s.pages = pages;
}

const char* isolation_mode_name(IsolationMode mode) {
  switch (mode) {
    case IsolationMode::kOff: return "off";
    case IsolationMode::kMprotect: return "mprotect";
    case IsolationMode::kStrict: return "strict";
    case IsolationMode::kPkeys: return "pkeys";
  }
  return "?";
}

bool Kernel::isolation_available(IsolationMode mode, std::string* why) {
  if (mode != IsolationMode::kPkeys) return true;
  int key = ::pkey_alloc(0, 0);
  if (key < 0) {
    *why = std::string("pkeys isolation is not available here: pkey_alloc: ") + std::strerror(errno) +
           (errno == ENOSPC || errno == EINVAL || errno == ENOSYS ? " (the CPU or kernel has no memory protection keys)" : "");
    return false;
  }
  ::pkey_free(key);
  return true;
}

Kernel::Gate::Gate(Kernel* k) : k_(k), opened_(false) {
  if (k_ != nullptr && k_->in_process_ && k_->config_.isolation >= IsolationMode::kStrict) {
    k_->protect_kernel(false);
    opened_ = true;
  }
}

Kernel::Gate::~Gate() {
  if (opened_) k_->protect_kernel(true);
}

void Kernel::protect_kernel(bool hide) {
  if (config_.isolation == IsolationMode::kPkeys) {
    ::pkey_set(pkey_, hide ? PKEY_DISABLE_ACCESS : 0);
  } else {
    heap_.protect(hide ? PROT_NONE : PROT_READ | PROT_WRITE);
  }
}

void Kernel::cancel_timer(std::uint32_t timer) {
  Gate gate(this);
  timers_.cancel(timer);
}

void Kernel::close_heap(std::uint32_t slot) {
  Slot& s = slots_[slot];
  if (!s.open) return;
  s.pool->protect(s.heap, PROT_NONE);
  s.open = false;
  for (int i = 0; i < open_count_; ++i) {
    if (open_[i] == slot) {
      open_[i] = open_[--open_count_];
      break;
    }
  }
}

void Kernel::open_process(std::uint32_t slot) {
  if (config_.isolation == IsolationMode::kOff) return;
  Slot& s = slots_[slot];
  // Lazily: only the heap being entered stays open; a process that runs again keeps it open.
  for (int i = open_count_ - 1; i >= 0; --i) {
    if (open_[i] != slot) close_heap(open_[i]);
  }
  if (s.open) return;
  s.pool->protect(s.heap, PROT_READ | PROT_WRITE);
  s.open = true;
  open_[open_count_++] = slot;
}

Kernel::Kernel(const KernelConfig& config)
    : config_(config),
      heap_(pages_for((sizeof(Slot) * (config.max_processes + 1) + sizeof(FdEntry) * config.max_fds +
                       sizeof(std::uint32_t) * (config.max_processes + 1) + (40 + sizeof(Fired)) * config.max_timers +
                       sizeof(ChildNote) * (config.max_processes + 1) + sizeof(SupervisorEntry) * (config.max_supervisors + 1) +
                       sizeof(Death) * config.max_supervisors * config.death_queue) * 13 / 10) +
                16,
            /*huge_pages=*/config.isolation == IsolationMode::kStrict),
      timers_(heap_, config.max_timers) {}

std::unique_ptr<Kernel> Kernel::create(const KernelConfig& config) {
  check_page_size();
  std::string why;
  if (!isolation_available(config.isolation, &why)) {
    log_line("mnv: %s", why.c_str());
    errno = ENOTSUP;
    return nullptr;
  }
  install_trap_handlers();  // traps in micro-threads become EFAULT (runtime/trap.h)
  std::unique_ptr<Kernel> k(new Kernel(config));
  if (!k->init()) return nullptr;
  return k;
}

bool Kernel::init() {
  if (config_.death_queue == 0) {
    log_line("mnv: KernelConfig::death_queue must be at least 1");
    return false;
  }
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
  fired_ = static_cast<Fired*>(heap_.heap().allocate(sizeof(Fired) * config_.max_timers));
  notes_ = static_cast<ChildNote*>(heap_.heap().allocate(sizeof(ChildNote) * (config_.max_processes + 1)));
  sups_ = static_cast<SupervisorEntry*>(heap_.heap().allocate(sizeof(SupervisorEntry) * (config_.max_supervisors + 1)));
  death_rings_ = static_cast<Death*>(heap_.heap().allocate(sizeof(Death) * (config_.max_supervisors * config_.death_queue + 1)));
  if (fired_ == nullptr || notes_ == nullptr || sups_ == nullptr || death_rings_ == nullptr) {
    log_line("mnv: kernel tables do not fit the kernel heap");
    return false;
  }
  if (config_.isolation == IsolationMode::kPkeys) {
    pkey_ = ::pkey_alloc(0, 0);
    if (pkey_ < 0 || ::pkey_mprotect(heap_.segment().base(), heap_.segment().bytes(), PROT_READ | PROT_WRITE, pkey_) != 0) {
      log_line("mnv: pkeys: %s", std::strerror(errno));
      return false;
    }
  }
  poller_ = Poller::create(config_.poller, config_.max_fds, config_.wake_fd);
  if (poller_ == nullptr) {
    log_line("mnv: no poller could be created: errno %d", errno);
    return false;
  }
  // Completion mode. The OS reads sends from micro-heaps and single receives write into them, at
  // any time; a multishot receive leaves a connection's input in the poller's buffers, which
  // every process can read: only where no heap is ever hidden.
  if (CompletionIo* cio = config_.completion_io ? poller_->completion_io() : nullptr;
      cio != nullptr && config_.isolation == IsolationMode::kOff) {
    cio->enable_recv_multishot(config_.recv_multishot);
    completion_io_ = cio;
  }
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

bool Kernel::stop_signalled() { return g_stop_requested.load(std::memory_order_relaxed); }

void Kernel::set_stop_signal_fd(int fd) { g_stop_fd.store(fd, std::memory_order_release); }

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
  Gate gate(this);
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
  slots_[slot] = Slot{p, heap, &pool, -1, 0, turns_, 0, 0, 0, 0, false, false, false, false, false, 0, 0};
  if (config_.isolation != IsolationMode::kOff) {
    // A fresh heap is accessible: whoever creates the process builds its first thread now.
    // Heaps opened this way before it are done with (their first thread is built): close one,
    // never the heap of the process that is running.
    if (open_count_ == kMaxOpen) close_heap(open_[0] != running_slot_ ? open_[0] : open_[1]);
    slots_[slot].open = true;
    open_[open_count_++] = slot;
  }
  ++live_;
  enqueue(slot);
  return p;
}

void Kernel::mark_listener(Process* p) {
  Gate gate(this);
  slots_[p->kernel_slot()].listener = true;
}

Supervisor Kernel::make_supervisor(ThreadRef t) {
  Gate gate(this);
  MNV_ASSERT(t->process != nullptr && t->process->kernel_slot() != 0);
  if (t->supervisor_id != 0) return Supervisor{t->supervisor_id, sups_[t->supervisor_id].gen};
  std::uint32_t id = sup_free_;
  if (id != 0) {
    sup_free_ = sups_[id].next;
  } else {
    if (sups_used_ >= config_.max_supervisors) {
      log_line("mnv: kernel supervisor table full (%zu): raise max_supervisors", config_.max_supervisors);
      return {};
    }
    id = ++sups_used_;
  }
  std::uint32_t slot = t->process->kernel_slot();
  SupervisorEntry& e = sups_[id];
  e = SupervisorEntry{t, 0, slot, e.gen, slots_[slot].sups, 0, 0, 0};
  slots_[slot].sups = id;
  t->supervisor_id = id;
  return Supervisor{id, e.gen};
}

bool Kernel::supervise(std::uint32_t child_slot, Supervisor by, const ChildNote& note) {
  Gate gate(this);
  if (child_slot == 0 || child_slot > slots_used_ || slots_[child_slot].proc == nullptr) return false;
  Slot& s = slots_[child_slot];
  bool live = by.id != 0 && by.id <= sups_used_ && sups_[by.id].slot != 0 && sups_[by.id].gen == by.gen;
  unlink_supervisor(child_slot);
  s.sup_id = live ? by.id : 0;
  s.sup_gen = by.gen;
  if (live) ++sups_[by.id].children;
  notes_[child_slot] = note;
  return live || by.id == 0;
}

Kernel::SupervisorEntry* Kernel::supervisor_of(std::uint32_t slot) {
  Slot& s = slots_[slot];
  if (s.sup_id == 0) return nullptr;
  SupervisorEntry& e = sups_[s.sup_id];
  return e.slot != 0 && e.gen == s.sup_gen ? &e : nullptr;
}

void Kernel::unlink_supervisor(std::uint32_t slot) {
  SupervisorEntry* e = supervisor_of(slot);
  slots_[slot].sup_id = 0;
  if (e == nullptr) return;
  MNV_ASSERT(e->children > 0);
  // The last child of a supervisor gone while the kernel stops: its reap() may end now.
  if (--e->children == 0 && stopping_) enqueue(e->slot);
}

namespace {
void log_unsupervised_death(const Death& d, const char* why) {
  char buf[256];
  log_line("mnv: process %u died and was reclaimed (%s): %s", d.slot, why, d.error.describe(buf, sizeof buf));
}
}  // namespace

void Kernel::release_supervisor(std::uint32_t id) {
  Gate gate(this);
  MNV_ASSERT(id != 0 && id <= sups_used_ && sups_[id].slot != 0);
  SupervisorEntry& e = sups_[id];
  // What it never received falls back to the default: one line each. That includes a death
  // handed over to it (it was readied) if it ends before it ran: a thread readied ahead of it
  // trapped, ending the process. (It is ending now, inside its process: its heap is open.)
  ThreadState* t = e.thread;
  if (t->reaping && t->status == ThreadState::Status::kRunnable) {
    const Death& handed = static_cast<DeathWait*>(t->block)->death;
    if (handed) {
      log_unsupervised_death(handed, "its supervisor ended first");
      e.dropped += handed.dropped;
    }
  }
  for (; e.count > 0; --e.count, ++e.head) {
    log_unsupervised_death(death_rings_[(id - 1) * config_.death_queue + e.head % config_.death_queue],
                           "its supervisor ended first");
  }
  if (e.dropped != 0) {
    log_line("mnv: %lu deaths were dropped (their supervisor's queue was full) before it ended",
             static_cast<unsigned long>(e.dropped));
  }
  for (std::uint32_t* link = &slots_[e.slot].sups; *link != 0; link = &sups_[*link].next) {
    if (*link == id) {
      *link = e.next;
      break;
    }
  }
  e = SupervisorEntry{nullptr, 0, 0, e.gen + 1, sup_free_, 0, 0, 0};
  sup_free_ = id;
}

void Kernel::report_death(std::uint32_t slot) {
  Slot& s = slots_[slot];
  Death d{.slot = slot, .error = s.proc->death(), .note = notes_[slot]};
  if (s.sup_id != 0) {
    SupervisorEntry& e = sups_[s.sup_id];
    if (supervisor_of(slot) != nullptr && e.slot != slot) {
      if (e.count == config_.death_queue) {
        ++e.dropped;
        ++deaths_dropped_;
      } else {
        death_rings_[(s.sup_id - 1) * config_.death_queue + (e.head + e.count) % config_.death_queue] = d;
        ++e.count;
      }
      enqueue(e.slot);  // handed over at its dispatch, when its heap is open
      return;
    }
  }
  log_unsupervised_death(d, s.sup_id != 0 ? "its supervisor ended first" : "no supervisor");
}

bool Kernel::deliver_deaths(std::uint32_t slot) {
  bool readied = false;
  for (std::uint32_t id = slots_[slot].sups; id != 0; id = sups_[id].next) {
    SupervisorEntry& e = sups_[id];
    bool done = stopping_ && e.count == 0 && e.children == 0;  // nothing left to report, ever
    if (e.count == 0 && !done) continue;
    ThreadState* t = e.thread;
    if (!t->reaping || t->status != ThreadState::Status::kBlocked) continue;  // busy: stays queued
    auto* w = static_cast<DeathWait*>(t->block);
    if (done) {
      w->death = Death{};
      w->death.dropped = e.dropped;
      e.dropped = 0;
      slots_[slot].proc->ready(t);
      readied = true;
      continue;
    }
    w->death = death_rings_[(id - 1) * config_.death_queue + e.head % config_.death_queue];
    w->death.dropped = e.dropped;
    e.dropped = 0;
    e.head = (e.head + 1) % config_.death_queue;
    --e.count;
    slots_[slot].proc->ready(t);  // (`reaping` stays set until it resumes: see release_supervisor)
    readied = true;
  }
  return readied;
}

void Kernel::ready_thread(std::uint32_t slot, ThreadRef t) {
  MNV_ASSERT(slot != 0 && slot <= slots_used_ && slots_[slot].proc != nullptr);
  open_process(slot);
  t->process->ready(t);
  enqueue(slot);
}

void Kernel::own(int fd, std::uint32_t slot) {
  MNV_ASSERT(fd >= 0 && static_cast<std::size_t>(fd) < config_.max_fds);
  FdEntry& e = fds_[fd];
  if (e.owner == slot) return;
  if (e.owner != 0) disown(fd);
  Slot& s = slots_[slot];
  ++s.fd_count;
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
  e = FdEntry{0, e.wanted, 0, 0, 0, -1, -1};
  if (s.fd_count > 0) --s.fd_count;
}

bool Kernel::adopt_fd(int fd, Process* p) {
  Gate gate(this);
  if (p == nullptr) p = &this_process();
  MNV_ASSERT(p->kernel_slot() != 0);
  if (fd < 0 || static_cast<std::size_t>(fd) >= config_.max_fds) {
    panic("mnv: fd %d beyond the kernel's fd table (%zu): raise max_fds", fd, config_.max_fds);
  }
  Slot& s = slots_[p->kernel_slot()];
  if (config_.max_fds_per_process != 0 && fds_[fd].owner != p->kernel_slot() &&
      s.fd_count >= config_.max_fds_per_process) {
    return false;
  }
  own(fd, p->kernel_slot());
  return true;
}

void Kernel::close_fd(int fd) {
  if (fd < 0) return;
  Gate gate(this);
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
  open_process(slot);
  deliver(slot);
  bool hide = config_.isolation >= IsolationMode::kStrict;
  Process* p = s.proc;  // read before the kernel heap (which holds `s`) is hidden
  if (hide) protect_kernel(true);
  in_process_ = true;
  running_slot_ = slot;
  p->dispatch(Process::kDispatchBudget);
  running_slot_ = 0;
  in_process_ = false;
  if (hide) protect_kernel(false);
  if (config_.max_run_ns > 0 && !s.proc->faulted()) report_stall(slot);
  s.last_turn = turns_;
  s.trimmed = false;
  ++dispatches_;
  count_heap_pages(slot);
  flush(slot);
  if (s.proc->faulted() || (s.proc->thread_count() == 0 && s.proc->death().code != 0)) {
    if (s.proc->faulted()) ++traps_[KernelMetrics::trap_kind(s.proc->death().signo)];
    ++reclaimed_;
    report_death(slot);
    reclaim(slot);
    return;
  }
  if (s.proc->thread_count() == 0) {
    reclaim(slot);
    return;
  }
  if (s.proc->runnable()) enqueue(slot);  // its budget was spent: the rest in the next pass
}

void Kernel::report_stall(std::uint32_t slot) {
  // Under the limit, but long enough to be a stall for every other process of this kernel (a
  // quarter of the limit or more): one line, as Seastar's stall reports, so it can be found
  // before it becomes a trap.
  std::int64_t ran = last_dispatch_ran_at_least_ns();
  if (ran == 0) return;
  log_line("mnv: process %u ran %lld ms or more of CPU time without returning to its kernel (a stall for the "
           "others; at %lld ms it is trapped)",
           slot, static_cast<long long>(ran / 1'000'000), static_cast<long long>(config_.max_run_ns / 1'000'000));
}

void Kernel::deliver(std::uint32_t slot) {
  Slot& s = slots_[slot];
  // Deaths of supervised processes, before deadlines: a reaper that has both gets the death.
  if (s.sups != 0) deliver_deaths(slot);
  // Deadlines that passed: a timer that fired for a wait that has since ended is stale.
  while (s.fired_head != 0) {
    Fired& f = fired_[s.fired_head - 1];
    std::uint32_t index = s.fired_head - 1;
    s.fired_head = f.next;
    auto* t = reinterpret_cast<ThreadState*>(reinterpret_cast<char*>(s.heap) + (f.cookie & kOffsetMask));
    if (t->status == ThreadState::Status::kBlocked && t->block != nullptr && t->block->timer == f.id) {
      t->block->timer = 0;
      t->block->timed_out = true;
      s.proc->ready(t);
    }
    f.next = fired_free_;
    fired_free_ = index + 1;
  }
  if (!s.fresh) return;
  s.fresh = false;
  for (std::int32_t fd = s.fd_head; fd >= 0; fd = fds_[fd].next) fds_[fd].scratch = 0;
  // Readiness since the last dispatch (the seed's fresh fds): ready every thread waiting for it;
  // what nobody waited for is kept as pending (edge-triggered pollers report it once).
  s.proc->blocked().for_each([&](ThreadState* t) {
    Block* b = t->block;
    if (b == nullptr || b->fd < 0) return;
    FdEntry& e = fds_[b->fd];
    if (e.owner != slot || (e.fresh & wakes(b->events)) == 0) return;
    b->revents = e.fresh;
    e.scratch |= b->events | kTransferDone;  // taken
    s.proc->ready(t);
  });
  for (std::int32_t fd = s.fd_head; fd >= 0; fd = fds_[fd].next) {
    FdEntry& e = fds_[fd];
    e.pending |= e.fresh & ~e.scratch;
    e.fresh = 0;
    e.scratch = 0;
  }
}

void Kernel::flush(std::uint32_t slot) {
  Slot& s = slots_[slot];
  // A supervisor that has just begun to wait gets what was queued meanwhile (ahead of threads
  // readied below). Not in a process that is being reclaimed: the death would be lost with it.
  if (s.sups != 0 && !s.proc->faulted() && deliver_deaths(slot)) enqueue(slot);
  for (std::int32_t fd = s.fd_head; fd >= 0; fd = fds_[fd].next) fds_[fd].scratch = 0;
  s.proc->blocked().for_each([&](ThreadState* t) {
    Block* b = t->block;
    if (b == nullptr) return;
    if (b->fd >= 0) {
      FdEntry& e = fds_[b->fd];
      if (e.owner != slot) own(b->fd, slot);
      std::uint32_t hit = e.pending & wakes(b->events);
      if (hit != 0) {  // it already happened
        b->revents = e.pending;
        e.pending &= ~(b->events | kTransferDone);
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
  open_process(slot);
  s.proc->destroy();  // ends every thread; their sockets close their fds through close_fd()
  MNV_ASSERT(s.sups == 0);  // (its supervising threads released their entries as they ended)
  unlink_supervisor(slot);
  while (s.fd_head >= 0) close_fd(s.fd_head);
  while (s.fired_head != 0) {  // deadlines nobody will see
    std::uint32_t index = s.fired_head - 1;
    s.fired_head = fired_[index].next;
    fired_[index].next = fired_free_;
    fired_free_ = index + 1;
  }
  if (s.open) {
    s.open = false;
    for (int i = 0; i < open_count_; ++i) {
      if (open_[i] == slot) {
        open_[i] = open_[--open_count_];
        break;
      }
    }
  }
  heap_pages_ -= s.pages;
  s.pages = 0;
  s.pool->release(s.heap);  // (release makes the heap accessible again for its next owner)
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
  // Recorded here and delivered when the process is next dispatched (its heap may be hidden
  // now): the kernel touches no process memory outside a dispatch.
  fds_[fd].fresh |= events;
  slots_[slot].fresh = true;
  enqueue(slot);
}

void Kernel::on_timer(std::uint64_t cookie, std::uint32_t id) {
  auto slot = static_cast<std::uint32_t>(cookie >> kSlotShift);
  Slot& s = slots_[slot];
  MNV_ASSERT(s.proc != nullptr);
  std::uint32_t index;
  if (fired_free_ != 0) {
    index = fired_free_ - 1;
    fired_free_ = fired_[index].next;
  } else {
    MNV_ASSERT(fired_used_ < config_.max_timers);
    index = fired_used_++;
  }
  fired_[index] = Fired{cookie, id, s.fired_head};
  s.fired_head = index + 1;
  enqueue(slot);
}

void Kernel::trim_idle() {
  // A process that has not run since the previous pass is idle: it gives back what it kept
  // for while it was busy (its sockets' rings), then its heap returns the pages above its top,
  // so an idle connection keeps only what it holds.
  for (std::uint32_t slot = 1; slot <= slots_used_; ++slot) {
    Slot& s = slots_[slot];
    if (s.proc == nullptr || s.last_turn >= trim_turn_ || s.trimmed) continue;
    open_process(slot);  // (isolation: once per idle period, not per pass)
    s.proc->release_idle();
    s.heap->trim();
    count_heap_pages(slot);
    s.trimmed = true;  // until it runs again
    idle_trims_.fetch_add(1, std::memory_order_release);
  }
  trim_turn_ = turns_;
}

void Kernel::begin_shutdown() {
  if (stopping_) return;
  stopping_ = true;
  stop_deadline_ = now_ + config_.grace_ns;
  int listeners = 0;
  for (std::uint32_t slot = 1; slot <= slots_used_; ++slot) {
    if (slots_[slot].proc != nullptr && slots_[slot].listener) {
      reclaim(slot);
      ++listeners;
    }
  }
  if (listeners > 0) {  // (for operators, and for tests that wait for it)
    log_line("mnv: stopping: %d listener(s) closed; %zu process(es) get up to %lld ms to finish", listeners, live_,
             static_cast<long long>(config_.grace_ns / 1'000'000));
  }
  // Supervisors with nothing left to watch are told (an empty Death from reap()); the others
  // once their last child is gone.
  for (std::uint32_t id = 1; id <= sups_used_; ++id) {
    if (sups_[id].slot != 0 && sups_[id].children == 0) enqueue(sups_[id].slot);
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
  std::optional<RunawayTimer> runaway;
  if (config_.max_run_ns > 0) runaway.emplace(config_.max_run_ns);
  now_ = monotonic_ns();
  next_trim_ = now_ + config_.trim_interval_ns;
  constexpr int kMaxEvents = 256;
  PollEvent events[kMaxEvents];
  for (;;) {
    ++turns_;
    if (g_stop_requested.load(std::memory_order_relaxed) || stop_requested_.load(std::memory_order_acquire)) {
      begin_shutdown();
    }
    if (hooks_.on_turn != nullptr) hooks_.on_turn(hooks_.ctx);
    // One pass runs the processes that were ready when it began. One readied during the pass
    // (by its own flush, say, when what it waits for is already pending) runs in the next,
    // after a poll: a process that is readied at every wait cannot hold the kernel in one
    // endless pass, starving timers, completions and every other process.
    for (std::uint32_t ready = runq_len_; ready > 0; --ready) {
      std::uint32_t slot = runq_[runq_head_];
      runq_head_ = (runq_head_ + 1) % (config_.max_processes + 1);
      --runq_len_;
      dispatch(slot);
    }
    if (stopping_ && (live_ == 0 || now_ >= stop_deadline_)) break;
    if (!stopping_ && config_.exit_when_idle && live_ == 0) break;
    std::int64_t deadline = timers_.next_deadline();
    if (next_trim_ < deadline) deadline = next_trim_;
    // Metrics: a turn that dispatched anything is published within kPublishNs, waking for it if
    // need be (so an idle shard's cells are exact a millisecond after its last work).
    if (config_.kernel_metrics != nullptr) {
      if (publish_at_ == INT64_MAX && dispatches_ != published_.dispatches) publish_at_ = now_ + kPublishNs;
      if (publish_at_ < deadline) deadline = publish_at_;
    }
    if (stopping_ && stop_deadline_ < deadline) deadline = stop_deadline_;
    std::int64_t timeout = deadline - now_;
    if (timeout < 0 || runq_len_ > 0) timeout = 0;
    bool slept = false;
    if (hooks_.before_wait != nullptr) {
      if (!hooks_.before_wait(hooks_.ctx, timeout != 0)) {
        timeout = 0;
      } else {
        slept = timeout != 0;
      }
    }
    int n = poller_->wait(timeout, events, kMaxEvents);
    if (slept && hooks_.after_sleep != nullptr) hooks_.after_sleep(hooks_.ctx);
    now_ = monotonic_ns();
    for (int i = 0; i < n; ++i) on_fd_event(events[i].fd, events[i].events);
    timers_.expire(now_, [this](std::uint64_t cookie, std::uint32_t id) { on_timer(cookie, id); });
    if (now_ >= publish_at_) publish_metrics();
    if (now_ >= next_trim_) {
      trim_idle();
      next_trim_ = now_ + config_.trim_interval_ns;
    }
  }
  for (std::uint32_t slot = 1; live_ > 0 && slot <= slots_used_; ++slot) {
    if (slots_[slot].proc != nullptr) reclaim(slot);
  }
  publish_metrics();
  tl_kernel = saved;
  return 0;
}

}  // namespace mnv
