// runtime/raise.h — errors: raise, finally, lower (the seed's vk_raise/vk_finally/vk_lower).
//
// A thread has at most one finally handler, a coroutine returning mnv::Finally that it
// registers once. A raise suspends the raiser and runs the handler; the handler reads error(),
// cleans up, and either ends (which ends the thread and frees its frames) or lowers, which
// resumes the raiser right after its raise, and waits there for the next raise:
//
//   mnv::Finally on_error(int* failures) {
//     for (;;) {
//       if (mnv::error().code != EAGAIN) co_return;  // end the thread
//       ++*failures;
//       co_await mnv::lower();                       // back to the raiser
//     }
//   }
//   mnv::Thread worker(int* failures) {
//     co_await mnv::finally(on_error(failures));
//     int code = co_await mnv::raise(EAGAIN);        // handler runs, lowers: code == EAGAIN
//   }
//
// A thread without a handler that raises is ended, with one log line. The blocking ops raise
// through the same path; a hardware trap runs the handler too, but lower() then ends the thread:
// a faulted frame is never resumed.
#pragma once

#include <cerrno>
#include <coroutine>
#include <source_location>
#include <utility>

#include "runtime/process.h"
#include "runtime/thread.h"

namespace mnv {

struct RaiseAwaiter {
  Error e;
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> at) noexcept { return this_thread().raise(at, e); }
  // Resumed by lower(): the raised code.
  int await_resume() const noexcept { return e.code; }
};

// Raises `code` (an errno value) in the current thread.
// ENOMEM also records the page budget the current process's heap would have needed.
[[nodiscard]] inline RaiseAwaiter raise(int code, std::source_location where = std::source_location::current()) {
  Error e{.code = code, .where = where};
  if (code == ENOMEM && tl_current.process != nullptr) e.needed_pages = tl_current.process->heap().needed_pages();
  return RaiseAwaiter{e};
}

// The error being handled (valid in the finally handler, and after lower()).
inline const Error& error() { return this_thread().error; }

struct LowerAwaiter {
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> handler) noexcept {
    ThreadState& t = this_thread();
    MNV_ASSERT(t.in_finally);
    t.finally_at = handler;  // the next raise continues the handler from here
    t.in_finally = false;
    std::coroutine_handle<> r = std::exchange(t.raiser, nullptr);
    if (!r) {  // trapped: nothing to go back to
      end_thread(&t);
      return std::noop_coroutine();
    }
    t.resume_at = r;
    return r;
  }
  void await_resume() const noexcept {}
};

// From the finally handler: resume the raiser right after its raise.
[[nodiscard]] inline LowerAwaiter lower() { return {}; }

struct FinallyAwaiter {
  Finally handler;
  bool await_ready() noexcept {
    if (!handler) return false;  // its frame did not fit: raise ENOMEM
    ThreadState& t = this_thread();
    MNV_ASSERT(!t.in_finally);
    if (t.finally_frame) t.finally_frame.destroy();
    auto h = handler.release();
    h.promise().owner = &t;
    t.finally_frame = h;
    t.finally_at = h;
    return true;
  }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> at) noexcept { return detail::raise_no_frame(at); }
  void await_resume() const noexcept {}
};

// Registers (or replaces) the current thread's finally handler.
[[nodiscard]] inline FinallyAwaiter finally(Finally handler) { return FinallyAwaiter{std::move(handler)}; }

}  // namespace mnv
