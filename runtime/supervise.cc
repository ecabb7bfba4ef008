#include "runtime/supervise.h"

#include "runtime/kernel.h"
#include "runtime/process.h"

namespace mnv {

Supervisor supervisor(ThreadRef t) {
  Kernel* k = Kernel::current();
  if (k == nullptr) return {};
  return k->make_supervisor(t != nullptr ? t : &this_thread());
}

bool supervise(std::uint32_t child_slot, Supervisor by, const ChildNote& note) {
  Kernel* k = Kernel::current();
  return k != nullptr && k->supervise(child_slot, by, note);
}

bool supervise(Process* child, Supervisor by, const ChildNote& note) { return supervise(child->kernel_slot(), by, note); }

std::coroutine_handle<> ReapAwaiter::await_suspend(std::coroutine_handle<> h) noexcept {
  ThreadState& t = this_thread();
  t.resume_at = h;
  if (t.supervisor_id == 0 && !supervisor(&t)) {
    return t.raise(h, Error{.code = ENOSPC, .where = where_});  // (a lowered raise reaps nothing)
  }
  // Blocked like an I/O wait with no fd: the kernel hands a death over (or the deadline passes)
  // when this process is next dispatched, or right after this dispatch if one is queued.
  t.reaping = true;
  t.process->block(&t, &wait_);
  return std::noop_coroutine();
}

void release_kernel_supervisor(std::uint32_t id) {
  if (Kernel* k = Kernel::current()) k->release_supervisor(id);
}

}  // namespace mnv
