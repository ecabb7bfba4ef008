// runtime/future.h — futures between threads of one process: spawn, request, listen, respond.
//
//   ThreadRef c = co_await spawn(child(args), msg);  start c (its first listen() gets msg);
//                                                   the caller keeps running
//   void* r = co_await request(c, msg);             send msg to c, run c, sleep until it responds
//   Message m = co_await listen();                  next message: the spawn message, then
//                                                   requests in the order they were made
//   respond(reply);  respond(m.from, reply);        wake the requester; the caller keeps running
//
// Messages are pointers into the same micro-heap (reference passing, as in the seed); nothing is
// copied or allocated. A requester whose callee ends before responding gets EPIPE raised.
// spawn() raises ENOMEM when the child's frame did not fit in the heap.
#pragma once

#include <cerrno>
#include <coroutine>
#include <source_location>

#include "runtime/process.h"
#include "runtime/thread.h"

namespace mnv {

struct SpawnAwaiter {
  Thread child;
  void* message;
  std::source_location where;
  ThreadRef spawned = nullptr;

  bool await_ready() noexcept {
    if (!child) return false;
    ThreadState& parent = this_thread();
    spawned = parent.process->spawn(std::move(child), message);
    return true;
  }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> at) noexcept {
    Error e{.code = ENOMEM, .needed_pages = this_process().heap().needed_pages(), .where = where};
    return this_thread().raise(at, e);
  }
  // The child, or null after an ENOMEM that the handler lowered.
  ThreadRef await_resume() const noexcept { return spawned; }
};

[[nodiscard]] inline SpawnAwaiter spawn(Thread child, void* message = nullptr,
                                        std::source_location where = std::source_location::current()) {
  return SpawnAwaiter{std::move(child), message, where};
}

struct RequestAwaiter {
  ThreadRef callee;
  void* message;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept {
    CriticalSection critical;  // (mem/critical_section.h)
    ThreadState& me = this_thread();
    MNV_ASSERT(callee->process == me.process && callee != &me);
    me.resume_at = h;
    me.status = ThreadState::Status::kPaused;
    me.message = message;
    me.reply = nullptr;
    callee->pending.push_back(&me);
    if (callee->listening) {
      callee->listening = false;
      me.process->play_next(callee);
    }
  }
  // The callee's reply (null after an EPIPE that the handler lowered).
  void* await_resume() const noexcept { return this_thread().reply; }
};

[[nodiscard]] inline RequestAwaiter request(ThreadRef callee, void* message) { return {callee, message}; }

struct Message {
  void* data = nullptr;
  ThreadRef from = nullptr;  // the requester; null for the spawn message
};

struct ListenAwaiter {
  bool await_ready() const noexcept {
    ThreadState& me = this_thread();
    return me.has_message || !me.pending.empty();
  }
  void await_suspend(std::coroutine_handle<> h) const noexcept {
    ThreadState& me = this_thread();
    me.resume_at = h;
    me.status = ThreadState::Status::kPaused;
    me.listening = true;
  }
  Message await_resume() const noexcept {
    CriticalSection critical;
    ThreadState& me = this_thread();
    if (me.has_message) {
      me.has_message = false;
      return Message{me.message, nullptr};
    }
    ThreadState* r = me.pending.pop_front();
    MNV_ASSERT(r != nullptr);
    me.serving.push_back(r);
    return Message{r->message, r};
  }
};

[[nodiscard]] inline ListenAwaiter listen() { return {}; }

// Replies to `requester` (listened to by the current thread) and plays it.
// Returns false if it is no longer waiting (an error was raised into it meanwhile).
inline bool respond(ThreadRef requester, void* reply) {
  CriticalSection critical;
  if (requester == nullptr || !List<ThreadState, QueueTag>::is_linked(requester)) return false;
  ThreadState& me = this_thread();
  me.serving.remove(requester);
  requester->reply = reply;
  me.process->play(requester);
  return true;
}

// Replies to the oldest request the current thread has listened to and not yet answered.
inline bool respond(void* reply) { return respond(this_thread().serving.front(), reply); }

}  // namespace mnv
