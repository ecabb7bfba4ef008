#include "runtime/thread.h"

#include <cerrno>
#include <exception>
#include <typeinfo>

#include "mem/critical_section.h"
#include "mem/heap.h"
#include "mem/log.h"
#include "mem/page.h"
#include "runtime/block.h"
#include "runtime/kernel.h"
#include "runtime/process.h"

namespace mnv {

namespace {
void log_thread_end(const ThreadState* t, const char* why) {
  char buf[256];
  log_line("mnv: thread %p in process %p ended: %s %s", static_cast<const void*>(t),
           static_cast<const void*>(t->process), why, t->error.describe(buf, sizeof(buf)));
}
}  // namespace

void* FrameAllocator::operator new(std::size_t bytes) noexcept {
  Process* p = tl_current.process;
  if (p == nullptr) panic("mnv: a micro-thread coroutine was called outside any process (use Process::Scope)");
  void* frame = p->heap().allocate(bytes);
  if (frame == nullptr) {
    log_line("mnv: process %p heap exhausted: a %zu-byte coroutine frame needs %zu pages (budget %zu)",
             static_cast<void*>(p), bytes, p->heap().needed_pages(), p->heap().pages());
  }
  return frame;
}

void FrameAllocator::operator delete(void* frame) noexcept {
  if (frame != nullptr) Heap::owner(frame)->free(frame);
}

void Thread::reset() {
  if (state_ == nullptr) return;
  MNV_ASSERT(state_->status == ThreadState::Status::kCreated && state_->process == nullptr);
  std::exchange(state_, nullptr)->body.destroy();
}

void end_thread(ThreadState* t) {
  CriticalSection critical;  // (mem/critical_section.h)
  Error gone{.code = EPIPE};
  while (ThreadState* r = t->pending.pop_front()) r->raise_in(gone);
  while (ThreadState* r = t->serving.pop_front()) r->raise_in(gone);
  std::coroutine_handle<> body = t->body;
  std::coroutine_handle<> handler = t->finally_frame;
  void (*on_end)(void*) = t->on_end;
  void* on_end_arg = t->on_end_arg;
  bool trapped = t->trapped;
  if (t->process != nullptr) t->process->forget(t);
  if (handler) handler.destroy();
  if (trapped) return;  // reclaimed with its whole process: fds by the kernel, memory with the heap
  body.destroy();  // t itself lives in this frame
  if (on_end != nullptr) on_end(on_end_arg);
}

std::coroutine_handle<> ThreadState::raise(std::coroutine_handle<> at, const Error& e) {
  CriticalSection critical;  // (mem/critical_section.h)
  error = e;
  if (!finally_at || in_finally) {
    log_thread_end(this, in_finally ? "(raise inside its finally handler)" : "(no finally handler)");
    if (process != nullptr) process->note_death(error);
    end_thread(this);
    return std::noop_coroutine();
  }
  raiser = at;
  in_finally = true;
  resume_at = finally_at;
  return finally_at;
}

void ThreadState::raise_in(const Error& e) {
  CriticalSection critical;  // (mem/critical_section.h)
  MNV_ASSERT(status != Status::kRunning);
  List<ThreadState, QueueTag>::unlink(this);
  Kernel::drop_deadline(block);
  block = nullptr;
  op = nullptr;
  listening = false;
  reaping = false;
  error = e;
  if (!finally_at || in_finally) {
    log_thread_end(this, "(no finally handler)");
    if (process != nullptr) process->note_death(error);
    end_thread(this);
    return;
  }
  raiser = e.signo != 0 ? std::coroutine_handle<>() : resume_at;  // a trapped frame never resumes
  in_finally = true;
  resume_at = finally_at;
  status = Status::kPaused;
  process->play(this);
}

namespace {
void log_uncaught() {
  const char* what = "unknown";
  try {
    throw;
  } catch (const std::exception& ex) {
    what = ex.what();
  } catch (...) {
  }
  log_line("mnv: uncaught C++ exception in micro-thread %p: %s; the thread ends",
           static_cast<void*>(tl_current.thread), what);
}
}  // namespace

void Thread::promise_type::unhandled_exception() noexcept { log_uncaught(); }
void Finally::promise_type::unhandled_exception() noexcept { log_uncaught(); }

namespace detail {
std::coroutine_handle<> raise_no_frame(std::coroutine_handle<> at) {
  CriticalSection critical;  // (mem/critical_section.h)
  Error e{.code = ENOMEM, .needed_pages = this_process().heap().needed_pages()};
  return this_thread().raise(at, e);
}
}  // namespace detail

}  // namespace mnv
