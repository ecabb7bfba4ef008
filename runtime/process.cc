#include "runtime/process.h"

#include <cerrno>
#include <new>

#include "runtime/block.h"
#include "runtime/kernel.h"
#include "runtime/supervise.h"
#include "runtime/trap.h"

namespace mnv {

using Status = ThreadState::Status;

Process* Process::create(Heap* heap) {
  void* p = heap->allocate(sizeof(Process));
  if (p == nullptr) return nullptr;
  Process* proc = new (p) Process();
  proc->heap_ = heap;
  return proc;
}

void Process::destroy() {
  MNV_ASSERT(!dispatching_);
  Scope scope(this);
  // Handlers do not run: reclaiming a process is not an error inside any of its threads.
  while (ThreadState* t = all_.front()) {
    t->finally_at = nullptr;
    t->pending.for_each([](ThreadState* r) { List<ThreadState, QueueTag>::unlink(r); });
    t->serving.for_each([](ThreadState* r) { List<ThreadState, QueueTag>::unlink(r); });
    end_thread(t);
  }
  while (idle_.pop_front() != nullptr) {  // hooks that outlive their threads stay unlinked
  }
  while (ReclaimHook* h = reclaim_.pop_front()) h->release(h);  // (held by trapped frames)
  Heap* heap = heap_;
  this->~Process();
  heap->free(this);
}

void Process::release_idle() {
  Scope scope(this);  // a hook may allocate from this process's heap (a socket keeping bytes)
  while (IdleHook* h = idle_.pop_front()) h->release(h);
}

void Process::adopt(ThreadState* t) {
  CriticalSection critical;
  MNV_ASSERT(t->status == Status::kCreated && t->process == nullptr);
  MNV_ASSERT(heap_->contains(t));
  t->process = this;
  all_.push_back(t);
  ++threads_;
}

ThreadRef Process::spawn(Thread&& thread, void* message) {
  if (!thread) return nullptr;
  ThreadState* t = thread.release();
  adopt(t);
  t->message = message;
  t->has_message = message != nullptr;
  play(t);
  return t;
}

std::size_t Process::dispatch(std::uint64_t budget) {
  // The dispatcher's own bookkeeping is runtime code; only the threads' code (inside resume())
  // runs where a runaway trap may land (mem/critical_section.h).
  CriticalSection critical;
  MNV_ASSERT(!dispatching_);
  dispatching_ = true;
  ++tl_dispatches;  // (a new dispatch for the runaway clock: runtime/trap.h)
  Current saved = tl_current;
  TrapPoint trap;
  TrapPoint* saved_trap = tl_trap_point;
  tl_current.process = this;
  ThreadState* volatile faulted_thread = nullptr;
  if (sigsetjmp(trap.env, 0) != 0) {
    // A thread trapped (runtime/trap.h). Its frame is never resumed: its finally handler runs
    // with EFAULT; nothing else of this process runs; the kernel then reclaims the process.
    tl_in_critical = true;  // (back in the section above: the jump skipped OutsideCriticalSection's end)
    ThreadState* t = tl_current.thread;
    faulted_ = true;
    faulted_thread = t;
    Error e{.code = EFAULT, .signo = trap.signo, .address = trap.address};
    note_death(e);
    t->status = Status::kPaused;
    t->trapped = true;
    t->op = nullptr;
    if (t->in_finally) t->finally_at = nullptr;  // trapped inside its handler: not resumed either
    t->in_finally = false;
    tl_current.thread = nullptr;
    t->raise_in(e);
  }
  tl_trap_point = &trap;
  budget_ = budget;
  // (A process that faulted runs its faulted thread's handler whatever is left of the budget.)
  while (!run_.empty() && (spend() || faulted_)) {
    ThreadState* t = run_.pop_front();
    if (faulted_ && t != faulted_thread) continue;  // the process is going away
    t->status = Status::kRunning;
    tl_current.thread = t;
    if (t->op != nullptr) {
      // A blocked op is retried before its coroutine sees anything.
      if (t->op->step() != Op::Step::kResume) continue;
    }
    {
      OutsideCriticalSection program;
      t->resume_at.resume();  // t may have ended: do not touch it after this
    }
  }
  tl_trap_point = saved_trap;
  tl_current = saved;
  budget_ = ~std::uint64_t{0};  // (ops started outside a dispatch are not limited)
  dispatching_ = false;
  return threads_;
}

void Process::play(ThreadRef t) {
  CriticalSection critical;
  MNV_ASSERT(t->process == this);
  if (t->status != Status::kCreated && t->status != Status::kPaused) return;
  t->status = Status::kRunnable;
  run_.push_back(t);
}

void Process::play_next(ThreadRef t) {
  CriticalSection critical;
  MNV_ASSERT(t->process == this);
  if (t->status != Status::kCreated && t->status != Status::kPaused) return;
  t->status = Status::kRunnable;
  run_.push_front(t);
}

void Process::ready(ThreadRef t) {
  CriticalSection critical;
  MNV_ASSERT(t->process == this && t->status == Status::kBlocked);
  blocked_.remove(t);
  Kernel::drop_deadline(t->block);
  t->status = Status::kRunnable;
  run_.push_back(t);
}

void Process::requeue(ThreadState* t) {
  CriticalSection critical;
  t->status = Status::kRunnable;
  run_.push_back(t);
}

void Process::block(ThreadState* t, Block* b) {
  CriticalSection critical;
  t->status = Status::kBlocked;
  t->block = b;
  blocked_.push_back(t);
}

void Process::forget(ThreadState* t) {
  CriticalSection critical;
  Kernel::drop_deadline(t->block);
  if (t->supervisor_id != 0) release_kernel_supervisor(std::exchange(t->supervisor_id, 0));
  List<ThreadState, QueueTag>::unlink(t);
  all_.remove(t);
  --threads_;
}

}  // namespace mnv
