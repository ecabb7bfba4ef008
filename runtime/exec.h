// runtime/exec.h — the execution API: play, pause, call, yield, wait (the seed's vk_play...).
//
//   play(t)            put t on its process's run queue; the caller keeps running
//   co_await pause()   stop; runs again only when someone plays this thread
//   co_await call(t)   pause, and t runs next
//   co_await yield()   go to the back of the run queue; the rest of the process runs first
//   co_await wait(b)   block on b (I/O readiness, a deadline); the kernel calls Process::ready()
//
// None of these allocates; a yield and its resume are a queue push, a pop and a resume.
#pragma once

#include <coroutine>

#include "runtime/process.h"
#include "runtime/thread.h"

namespace mnv {

inline void play(ThreadRef t) { t->process->play(t); }

struct PauseAwaiter {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept {
    ThreadState& t = this_thread();
    t.resume_at = h;
    t.status = ThreadState::Status::kPaused;
  }
  void await_resume() const noexcept {}
};
[[nodiscard]] inline PauseAwaiter pause() { return {}; }

struct CallAwaiter {
  ThreadRef target;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept {
    ThreadState& t = this_thread();
    t.resume_at = h;
    t.status = ThreadState::Status::kPaused;
    t.process->play_next(target);
  }
  void await_resume() const noexcept {}
};
[[nodiscard]] inline CallAwaiter call(ThreadRef target) { return {target}; }

struct YieldAwaiter {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept {
    ThreadState& t = this_thread();
    t.resume_at = h;
    t.process->requeue(&t);
  }
  void await_resume() const noexcept {}
};
[[nodiscard]] inline YieldAwaiter yield() { return {}; }

struct WaitAwaiter {
  Block* block;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept {
    ThreadState& t = this_thread();
    t.resume_at = h;
    t.process->block(&t, block);
  }
  void await_resume() const noexcept {}
};
[[nodiscard]] inline WaitAwaiter wait(Block* block) { return {block}; }

}  // namespace mnv
