// Supervision (runtime/supervise.h), in each isolation mode (off, mprotect, strict): a supervisor
// thread is told of its children's deaths — SIGSEGV and SIGFPE traps with the signal, address
// and description, ENOMEM with the exact pages the heap needed — with the note it attached; more
// deaths in one turn than its queue holds are counted as dropped; a death while the supervisor
// is busy waits for its next reap; deaths reported after the supervisor ended (or died) fall
// back to the kernel's one-line log, also when its process slot and its supervisor entry have
// been reused, and when a death was handed to a reaper that never ran; reap_until() gives up
// at its deadline; and delivering deaths allocates nothing from the global heap.
//
// Every test orders its events through the kernel's own scheduling (run queue order, one loop
// turn before any timer fires); no test sleeps to wait for something to happen.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "mem/page.h"
#include "net/io.h"
#include "runtime/exec.h"
#include "runtime/fault_injection.h"
#include "runtime/future.h"
#include "runtime/global_alloc_counter.h"
#include "runtime/kernel.h"
#include "runtime/raise.h"
#include "runtime/supervise.h"

namespace mnv::testing {
namespace {

constexpr std::int64_t kPatience = 5'000'000'000;  // a broken test fails after 5 s, never hangs

class SuperviseTest : public ::testing::TestWithParam<IsolationMode> {
 protected:
  std::unique_ptr<Kernel> make_kernel(std::size_t death_queue = 64, std::int64_t grace_ns = 5'000'000'000) {
    KernelConfig kc;
    kc.grace_ns = grace_ns;
    kc.poller = PollerKind::kEpoll;
    kc.isolation = GetParam();
    kc.max_fds = 1024;
    kc.max_processes = 256;
    kc.max_supervisors = 8;
    kc.death_queue = death_queue;
    kc.exit_when_idle = true;
    return Kernel::create(kc);
  }
  HeapPool pool_{16, 64};
};

Thread segv_child() {
  null_dereference();
  co_return;
}

Thread fpe_child() {
  divide_by_zero();
  co_return;
}

// Asks for more than its heap has and raises ENOMEM with no handler: the process dies of it.
Thread oom_child(std::size_t* needed) {
  void* big = this_process().heap().allocate(20 * kPageSize);
  if (big == nullptr) {
    *needed = this_process().heap().needed_pages();
    co_await raise(ENOMEM);
  }
}

Thread exiting_child() { co_return; }

// A peer-like note: more than one word, so that all of it must come back.
struct Who {
  std::uint64_t id;
  char name[16];
};

Who who(std::uint64_t id, const char* name) {
  Who w{id, {}};
  std::strncpy(w.name, name, sizeof w.name - 1);
  return w;
}

struct Reaped {
  static constexpr int kMax = 16;
  Death deaths[kMax];
  int count = 0;
  std::uint64_t dropped = 0;
  std::size_t oom_needed = 0;
  std::uint32_t slots[4] = {};
};

// Supervises one child of each kind (and one that exits normally, which is not a death), then
// reaps until it has heard of all three deaths.
Thread supervisor_of_three(HeapPool* pool, Reaped* out) {
  Supervisor me = supervisor();
  Kernel& k = *Kernel::current();
  Process* a = k.start(*pool, segv_child);
  Process* b = k.start(*pool, fpe_child);
  Process* c = k.start(*pool, oom_child, &out->oom_needed);
  Process* d = k.start(*pool, exiting_child);
  out->slots[0] = a->kernel_slot();
  out->slots[1] = b->kernel_slot();
  out->slots[2] = c->kernel_slot();
  out->slots[3] = d->kernel_slot();
  EXPECT_TRUE(supervise(a, me, ChildNote::of(who(1, "segv"))));
  EXPECT_TRUE(supervise(b, me, ChildNote::of(who(2, "fpe"))));
  EXPECT_TRUE(supervise(c, me, ChildNote::of(who(3, "oom"))));
  EXPECT_TRUE(supervise(d, me, ChildNote::of(who(4, "exit"))));
  while (out->count < 3) {
    Death death = co_await reap_until(monotonic_ns() + kPatience);
    if (!death) break;
    out->deaths[out->count++] = death;
  }
}

TEST_P(SuperviseTest, TrapsAndEnomemAreReportedWithTheirTags) {
  auto k = make_kernel();
  ASSERT_NE(k, nullptr);
  Reaped r;
  ASSERT_NE(k->start(pool_, supervisor_of_three, &pool_, &r), nullptr);
  k->run();
  ASSERT_EQ(r.count, 3);
  // In run-queue order: each child ran (and died) in the order it was made.
  const Death& segv = r.deaths[0];
  EXPECT_EQ(segv.slot, r.slots[0]);
  EXPECT_EQ(segv.note.as<Who>().id, 1u);
  EXPECT_STREQ(segv.note.as<Who>().name, "segv");
  EXPECT_EQ(segv.error.code, EFAULT);
  EXPECT_EQ(segv.error.signo, SIGSEGV);
  EXPECT_EQ(segv.error.address, 0u);  // the null pointer
  EXPECT_EQ(segv.dropped, 0u);
  char buf[256];
  EXPECT_STREQ(segv.error.describe(buf, sizeof buf), "EFAULT: SIGSEGV (invalid memory access) at address 0");

  const Death& fpe = r.deaths[1];
  EXPECT_EQ(fpe.slot, r.slots[1]);
  EXPECT_EQ(fpe.note.as<Who>().id, 2u);
  EXPECT_STREQ(fpe.note.as<Who>().name, "fpe");
  EXPECT_EQ(fpe.error.code, EFAULT);
  EXPECT_EQ(fpe.error.signo, SIGFPE);
  EXPECT_NE(fpe.error.address, 0u);  // the faulting instruction
  EXPECT_NE(std::string(fpe.error.describe(buf, sizeof buf)).find("SIGFPE (arithmetic error"), std::string::npos)
      << buf;

  const Death& oom = r.deaths[2];
  EXPECT_EQ(oom.slot, r.slots[2]);
  EXPECT_EQ(oom.note.as<Who>().id, 3u);
  EXPECT_STREQ(oom.note.as<Who>().name, "oom");
  EXPECT_EQ(oom.error.code, ENOMEM);
  EXPECT_EQ(oom.error.signo, 0);
  // 20 pages asked for (rounded up to the heap's size class), plus what the heap already held;
  // the death carries exactly what the heap told the child.
  EXPECT_GT(r.oom_needed, 20u);
  EXPECT_EQ(oom.error.needed_pages, r.oom_needed);
  std::string want = ", heap needs " + std::to_string(r.oom_needed) + " pages";
  EXPECT_NE(std::string(oom.error.describe(buf, sizeof buf)).find(want), std::string::npos) << buf;

  EXPECT_EQ(k->process_count(), 0u);
  EXPECT_EQ(pool_.in_use(), 0u);
}

// Makes `n` children that all trap in the same loop turn, while this thread waits.
Thread supervisor_of_many(HeapPool* pool, int n, Reaped* out) {
  Supervisor me = supervisor();
  for (int i = 0; i < n; ++i) {
    Process* c = Kernel::current()->start(*pool, i % 2 == 0 ? segv_child : fpe_child);
    EXPECT_TRUE(supervise(c, me, ChildNote::of(static_cast<std::uint64_t>(i))));
  }
  while (out->count + static_cast<int>(out->dropped) < n) {
    Death death = co_await reap_until(monotonic_ns() + kPatience);
    if (!death) break;
    out->dropped += death.dropped;
    out->deaths[out->count++] = death;
  }
}

TEST_P(SuperviseTest, MoreDeathsInOneTurnThanTheQueueHoldsAreCountedAsDropped) {
  auto k = make_kernel(/*death_queue=*/4);
  ASSERT_NE(k, nullptr);
  Reaped r;
  ASSERT_NE(k->start(pool_, supervisor_of_many, &pool_, 10, &r), nullptr);
  k->run();
  // The first four deaths were queued; the six after them found the queue full.
  ASSERT_EQ(r.count, 4);
  EXPECT_EQ(r.dropped, 6u);
  EXPECT_EQ(r.deaths[0].dropped, 6u);  // told with the first death it receives
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(r.deaths[i].note.as<std::uint64_t>(), static_cast<std::uint64_t>(i));
    EXPECT_EQ(r.deaths[i].error.signo, i % 2 == 0 ? SIGSEGV : SIGFPE);
    if (i > 0) {
      EXPECT_EQ(r.deaths[i].dropped, 0u);
    }
  }
  EXPECT_EQ(k->deaths_dropped(), 6u);
  EXPECT_EQ(k->process_count(), 0u);
  EXPECT_EQ(pool_.in_use(), 0u);
}

// The child dies while its supervisor is busy (asleep, not reaping): the death waits in the
// kernel and is handed over when the supervisor next reaps, turns later.
Thread busy_supervisor(HeapPool* pool, Reaped* out) {
  Supervisor me = supervisor();
  Process* c = Kernel::current()->start(*pool, fpe_child);
  out->slots[0] = c->kernel_slot();
  EXPECT_TRUE(supervise(c, me, ChildNote::of(std::uint64_t{9})));
  co_await sleep_for(1'000'000);  // the child runs (and dies) before this first wake-up
  Death d = co_await reap_until(monotonic_ns() + kPatience);
  if (d) out->deaths[out->count++] = d;
}

TEST_P(SuperviseTest, ADeathWhileTheSupervisorIsBusyWaitsForItsNextReap) {
  auto k = make_kernel();
  ASSERT_NE(k, nullptr);
  Reaped r;
  ASSERT_NE(k->start(pool_, busy_supervisor, &pool_, &r), nullptr);
  k->run();
  ASSERT_EQ(r.count, 1);
  EXPECT_EQ(r.deaths[0].slot, r.slots[0]);
  EXPECT_EQ(r.deaths[0].note.as<std::uint64_t>(), 9u);
  EXPECT_EQ(r.deaths[0].error.signo, SIGFPE);
  EXPECT_EQ(k->process_count(), 0u);
}

// On a kernel stop (SIGTERM), reap() keeps reporting deaths during the grace period and then,
// once no supervised process is left, returns an empty Death so the supervisor can end.
struct Stopping {
  Death deaths[4];
  int count = 0;
  bool second_child_ended = false;  // when the empty Death came
  bool empty_after_second = false;
  std::uint32_t dead_slot = 0;
};

Thread trap_after_stop() {
  co_await sleep_for(2'000'000);  // (in the grace period: the stop is requested at once)
  null_dereference();
}

Thread exit_after_stop(Stopping* s) {
  co_await sleep_for(4'000'000);
  s->second_child_ended = true;
}

Thread stopping_supervisor(HeapPool* pool, Stopping* s) {
  Supervisor me = supervisor();
  Process* a = Kernel::current()->start(*pool, trap_after_stop);
  Process* b = Kernel::current()->start(*pool, exit_after_stop, s);
  s->dead_slot = a->kernel_slot();
  EXPECT_TRUE(supervise(a, me));
  EXPECT_TRUE(supervise(b, me));
  Kernel::current()->request_stop();
  for (;;) {
    Death d = co_await reap();
    s->deaths[s->count++] = d;
    if (!d) {
      s->empty_after_second = s->second_child_ended;
      break;
    }
  }
}

TEST_P(SuperviseTest, OnStopReapReportsGraceDeathsThenReturnsEmptyWhenNothingIsLeft) {
  auto k = make_kernel(64, /*grace_ns=*/60'000'000'000);  // never reached: the run ends with its last process
  ASSERT_NE(k, nullptr);
  Stopping s;
  ASSERT_NE(k->start(pool_, stopping_supervisor, &pool_, &s), nullptr);
  std::int64_t start = monotonic_ns();
  EXPECT_EQ(k->run(), 0);
  EXPECT_LT(monotonic_ns() - start, 30'000'000'000);
  ASSERT_EQ(s.count, 2);
  EXPECT_EQ(s.deaths[0].slot, s.dead_slot);
  EXPECT_EQ(s.deaths[0].error.signo, SIGSEGV);
  EXPECT_FALSE(s.deaths[1]);
  EXPECT_TRUE(s.empty_after_second);
  EXPECT_EQ(k->process_count(), 0u);
  EXPECT_EQ(pool_.in_use(), 0u);
}

// A child that traps a loop turn after it starts (its timer fires after the turn in which the
// supervisor has ended; the delay's length does not matter).
Thread late_segv_child() {
  co_await sleep_for(1'000'000);
  null_dereference();
}

Thread brief_supervisor(HeapPool* pool) {
  Supervisor me = supervisor();
  Process* c = Kernel::current()->start(*pool, late_segv_child);
  EXPECT_TRUE(supervise(c, me, ChildNote::of(std::uint64_t{7})));
  co_return;  // ends (and its process exits) before its child dies
}

TEST_P(SuperviseTest, ADeathAfterTheSupervisorExitedIsLoggedByTheKernel) {
  auto k = make_kernel();
  ASSERT_NE(k, nullptr);
  ::testing::internal::CaptureStderr();
  ASSERT_NE(k->start(pool_, brief_supervisor, &pool_), nullptr);
  k->run();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("died and was reclaimed (its supervisor ended first): EFAULT: SIGSEGV"), std::string::npos)
      << err;
  EXPECT_EQ(k->process_count(), 0u);
  EXPECT_EQ(pool_.in_use(), 0u);
}

// Process P has two supervisor threads: `idle` supervises child A but never reaps; `reaper`
// supervises child B and, told of B's death, traps, so P dies with A's death still queued for
// `idle`. Child C, also supervised by `idle`, dies a turn later.
struct Orphans {
  HeapPool* pool = nullptr;
  Supervisor idle;
  int reaped = 0;
  std::uint64_t reaped_tag = 0;
};

Thread idle_supervisor() { co_await pause(); }

Thread trapping_reaper(Orphans* o) {
  Death d = co_await reap_until(monotonic_ns() + kPatience);
  ++o->reaped;
  o->reaped_tag = d.note.as<std::uint64_t>();
  null_dereference();  // the supervisor's own process dies
}

Thread two_supervisors(Orphans* o) {
  ThreadRef idle = co_await spawn(idle_supervisor());
  ThreadRef reaper = co_await spawn(trapping_reaper(o));
  o->idle = supervisor(idle);
  Kernel& k = *Kernel::current();
  Process* a = k.start(*o->pool, segv_child);
  Process* b = k.start(*o->pool, fpe_child);
  Process* c = k.start(*o->pool, late_segv_child);
  EXPECT_TRUE(supervise(a, o->idle, ChildNote::of(std::uint64_t{1})));
  EXPECT_TRUE(supervise(b, supervisor(reaper), ChildNote::of(std::uint64_t{2})));
  EXPECT_TRUE(supervise(c, o->idle, ChildNote::of(std::uint64_t{3})));
}

TEST_P(SuperviseTest, WhenTheSupervisorsProcessDiesQueuedAndLaterDeathsAreLoggedByTheKernel) {
  auto k = make_kernel();
  ASSERT_NE(k, nullptr);
  Orphans o;
  o.pool = &pool_;
  ::testing::internal::CaptureStderr();
  ASSERT_NE(k->start(pool_, two_supervisors, &o), nullptr);
  k->run();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(o.reaped, 1);
  EXPECT_EQ(o.reaped_tag, 2u);
  // P's own death (nobody supervises P), A's (queued when P died) and C's (after): one line each.
  auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = err.find(what); at != std::string::npos; at = err.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("died and was reclaimed (no supervisor): EFAULT: SIGSEGV"), 1u) << err;
  EXPECT_EQ(count("died and was reclaimed (its supervisor ended first): EFAULT: SIGSEGV"), 2u) << err;
  EXPECT_EQ(count("died and was reclaimed"), 3u) << err;
  EXPECT_EQ(k->process_count(), 0u);
  EXPECT_EQ(pool_.in_use(), 0u);
}

// A death handed to a reaper whose process then dies before the reaper ran is not lost: in one
// loop turn a hook (as cross-shard code would) readies P's thread T, and a child of P's reaper R
// dies; R is readied with the death behind T, T traps, and P is reclaimed with R unrun.
struct Handed {
  HeapPool* pool = nullptr;
  Kernel* kernel = nullptr;
  std::uint32_t p_slot = 0;
  ThreadRef t = nullptr;
  Supervisor r;
  bool armed = false;
  int reaped = 0;
};

Thread trap_when_readied() {
  Block never;  // an in-process wait: only Kernel::ready_thread ends it
  co_await wait(&never);
  null_dereference();
}

Thread reaper_of(Handed* h) {
  co_await reap_until(monotonic_ns() + kPatience);
  ++h->reaped;
}

Thread handed_process(Handed* h) {
  h->t = co_await spawn(trap_when_readied());
  ThreadRef r = co_await spawn(reaper_of(h));
  h->r = supervisor(r);
  h->p_slot = this_process().kernel_slot();
  h->armed = true;
}

void handed_on_turn(void* ctx) {
  auto* h = static_cast<Handed*>(ctx);
  if (!h->armed) return;
  h->armed = false;
  Process* c = h->kernel->start(*h->pool, segv_child);  // runs before P this turn
  h->kernel->supervise(c->kernel_slot(), h->r, ChildNote{});
  h->kernel->ready_thread(h->p_slot, h->t);
}

bool handed_before_wait(void* ctx, bool) { return !static_cast<Handed*>(ctx)->armed; }

TEST_P(SuperviseTest, ADeathHandedToAReaperThatNeverRanIsLoggedByTheKernel) {
  auto k = make_kernel();
  ASSERT_NE(k, nullptr);
  Handed h;
  h.pool = &pool_;
  h.kernel = k.get();
  k->set_hooks(KernelHooks{&h, handed_on_turn, handed_before_wait, nullptr});
  ::testing::internal::CaptureStderr();
  ASSERT_NE(k->start(pool_, handed_process, &h), nullptr);
  k->run();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(h.reaped, 0);  // R never ran
  EXPECT_NE(err.find("died and was reclaimed (its supervisor ended first): EFAULT: SIGSEGV"), std::string::npos)
      << err;
  EXPECT_NE(err.find("died and was reclaimed (no supervisor): EFAULT: SIGSEGV"), std::string::npos) << err;  // P
  EXPECT_EQ(k->process_count(), 0u);
  EXPECT_EQ(pool_.in_use(), 0u);
}

// Slot and entry reuse: P (supervisor S) starts child A, which dies a turn later, and ends.
// Q, dispatched after P in the same turn, then makes P2 — which takes P's free process slot —
// whose thread S2 takes S's free supervisor entry and supervises child B, which dies after A.
// A's death must not reach S2.
struct Reuse {
  HeapPool* pool = nullptr;
  std::uint32_t p_slot = 0, p2_slot = 0;
  Supervisor s, s2;
  int reaped = 0;
  std::uint64_t reaped_tag = 0;
};

Thread a_child() {
  co_await sleep_for(1'000'000);
  null_dereference();
}

Thread b_child() {
  co_await sleep_for(2'000'000);  // (armed after A's: expires with or after it, and runs after it)
  null_dereference();
}

Thread first_supervisor(Reuse* r) {
  r->s = supervisor();
  r->p_slot = this_process().kernel_slot();
  Process* a = Kernel::current()->start(*r->pool, a_child);
  EXPECT_TRUE(supervise(a, r->s, ChildNote::of(std::uint64_t{'A'})));
  co_return;
}

Thread second_supervisor(Reuse* r) {
  r->s2 = supervisor();
  r->p2_slot = this_process().kernel_slot();
  Process* b = Kernel::current()->start(*r->pool, b_child);
  EXPECT_TRUE(supervise(b, r->s2, ChildNote::of(std::uint64_t{'B'})));
  Death d = co_await reap_until(monotonic_ns() + kPatience);
  ++r->reaped;
  r->reaped_tag = d.note.as<std::uint64_t>();
}

Thread starter(Reuse* r) {
  EXPECT_NE(Kernel::current()->start(*r->pool, second_supervisor, r), nullptr);
  co_return;
}

TEST_P(SuperviseTest, AReusedSlotAndSupervisorEntryDoNotInheritOldChildren) {
  auto k = make_kernel();
  ASSERT_NE(k, nullptr);
  Reuse r;
  r.pool = &pool_;
  ::testing::internal::CaptureStderr();
  ASSERT_NE(k->start(pool_, first_supervisor, &r), nullptr);
  ASSERT_NE(k->start(pool_, starter, &r), nullptr);
  k->run();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(r.p2_slot, r.p_slot);  // the slot was reused...
  EXPECT_EQ(r.s2.id, r.s.id);      // ...and so was the supervisor entry, in a new generation
  EXPECT_NE(r.s2.gen, r.s.gen);
  EXPECT_EQ(r.reaped, 1);
  EXPECT_EQ(r.reaped_tag, std::uint64_t{'B'});
  EXPECT_NE(err.find("(its supervisor ended first): EFAULT: SIGSEGV"), std::string::npos) << err;
  EXPECT_EQ(k->process_count(), 0u);
}

Thread patient_supervisor(Reaped* out, std::int64_t* waited) {
  std::int64_t start = monotonic_ns();
  Death d = co_await reap_until(start + 2'000'000);
  *waited = monotonic_ns() - start;
  if (!d) ++out->count;
}

TEST_P(SuperviseTest, ReapUntilGivesUpAtItsDeadline) {
  auto k = make_kernel();
  ASSERT_NE(k, nullptr);
  Reaped r;
  std::int64_t waited = 0;
  ASSERT_NE(k->start(pool_, patient_supervisor, &r, &waited), nullptr);
  k->run();
  EXPECT_EQ(r.count, 1);  // an empty Death: nothing died
  EXPECT_GE(waited, 2'000'000);
}

// A child that traps with a handler (no log line), as a service's connection does.
Finally quiet() { co_return; }

Thread quiet_segv_child() {
  co_await finally(quiet());
  null_dereference();
}

struct Counted {
  HeapPool* pool = nullptr;
  int cycles = 0;
  int reaped = 0;
  long allocs = -1;
};

Thread cycling_supervisor(Counted* c) {
  Supervisor me = supervisor();
  long before = 0;
  for (int i = 0; i < c->cycles; ++i) {
    if (i == 200) before = global_allocations();  // after warm-up
    Process* child = Kernel::current()->start(*c->pool, quiet_segv_child);
    supervise(child, me, ChildNote::of(static_cast<std::uint64_t>(i)));
    Death d = co_await reap_until(monotonic_ns() + kPatience);
    if (!d || d.note.as<std::uint64_t>() != static_cast<std::uint64_t>(i)) break;
    ++c->reaped;
  }
  c->allocs = global_allocations() - before;
}

TEST_P(SuperviseTest, DeliveringDeathsMakesNoGlobalAllocations) {
  auto k = make_kernel();
  ASSERT_NE(k, nullptr);
  Counted c;
  c.pool = &pool_;
  c.cycles = 2200;
  ASSERT_NE(k->start(pool_, cycling_supervisor, &c), nullptr);
  k->run();
  EXPECT_EQ(c.reaped, 2200);
  EXPECT_EQ(c.allocs, 0) << "global allocations while 2000 children died and were reaped";
}

INSTANTIATE_TEST_SUITE_P(Modes, SuperviseTest,
                         ::testing::Values(IsolationMode::kOff, IsolationMode::kMprotect, IsolationMode::kStrict),
                         [](const ::testing::TestParamInfo<IsolationMode>& i) {
                           return std::string(isolation_mode_name(i.param));
                         });

}  // namespace
}  // namespace mnv::testing
