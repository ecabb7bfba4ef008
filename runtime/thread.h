// runtime/thread.h — micro-threads: C++20 coroutines whose frames live in a micro-heap.
//
// A micro-thread is a coroutine returning mnv::Thread. Its frame (the seed's `self`: every local
// survives suspension) is allocated from the micro-heap of the process that is current when the
// coroutine is called, never from the global heap. It starts suspended; spawn() or
// Process::spawn() hands it to its process, whose dispatch runs it.
//
//   mnv::Thread greeter(int n) {
//     for (int i = 0; i < n; ++i) co_await mnv::yield();
//   }
//
// Helpers that must suspend are written as mnv::Task<T> coroutines (their frames come from the
// same heap) and awaited; the runtime's own ops are plain awaitables that allocate nothing.
//
// ThreadState is the per-thread bookkeeping (the seed's struct vk_thread). It sits inside the
// thread's frame, so it too is in the process's heap; links put it on its process's queues.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <utility>

#include "runtime/error.h"
#include "runtime/intrusive_list.h"

namespace mnv {

class Process;
struct Block;
struct Op;

// A thread's default I/O endpoint, as the layer above defines it (net/: the thread's default
// Socket derives from this). The runtime only carries the pointer for it.
struct ThreadIo {
 protected:
  ~ThreadIo() = default;
};

struct QueueTag {};  // run queue, blocked queue, or a callee's requester lists: one at a time
struct AllTag {};    // the process's list of all its threads

struct ThreadState : Linked<QueueTag>, Linked<AllTag> {
  enum class Status : std::uint8_t {
    kCreated,   // frame built, not yet handed to a process
    kRunnable,  // on the process run queue
    kRunning,
    kPaused,    // held by a future (pause, listen, request): someone else plays it
    kBlocked,   // on the process blocked queue, waiting on a Block (I/O, timer)
  };

  Process* process = nullptr;
  std::coroutine_handle<> body;        // the thread's own coroutine frame
  std::coroutine_handle<> resume_at;   // innermost suspended coroutine: what dispatch resumes
  std::coroutine_handle<> finally_at;  // where the finally handler continues; null if none
  std::coroutine_handle<> finally_frame;
  std::coroutine_handle<> raiser;      // coroutine suspended in a raise, for lower(); null after a trap
  Error error;
  Status status = Status::kCreated;
  bool in_finally = false;
  bool trapped = false;  // a hardware trap stopped it mid-run: its frame is never resumed, nor
                         // destroyed (it is not at a suspension point); the heap goes with the process
  bool listening = false;
  bool reaping = false;                 // in reap() (runtime/supervise.h), until it resumes
  bool has_message = false;
  void* message = nullptr;  // spawn message (inbox), or this thread's outgoing request
  void* reply = nullptr;    // the response to this thread's request
  List<ThreadState, QueueTag> pending;  // requesters not yet listened to (FIFO)
  List<ThreadState, QueueTag> serving;  // requesters listened to, not yet responded
  Block* block = nullptr;               // what wait() blocks on
  Op* op = nullptr;                     // a blocked op to retry on wake-up (runtime/block.h)
  ThreadIo* io = nullptr;               // its default I/O endpoint (net/: its default Socket)
  std::uint32_t supervisor_id = 0;      // its entry in the kernel's supervisor table; 0: none
  void (*on_end)(void*) = nullptr;      // runs after the thread's frames are freed (e.g. frees
  void* on_end_arg = nullptr;           // a pipeline child's own socket)

  // Records `e` for the coroutine `at` (suspended in a raise) and returns what runs next: the
  // finally handler, or nothing once the thread has been ended (no handler, or a raise inside it).
  std::coroutine_handle<> raise(std::coroutine_handle<> at, const Error& e);
  // Raises `e` into this thread while it is suspended (paused or blocked), from outside it
  // (timeouts, a responder that died, traps): its handler is made runnable, or it is ended.
  void raise_in(const Error& e);
};

using ThreadRef = ThreadState*;

// What runs on this OS thread now. Set by Process::dispatch and Process::Scope.
struct Current {
  Process* process = nullptr;
  ThreadState* thread = nullptr;
};
inline constinit thread_local Current tl_current{};

inline ThreadState& this_thread() {
  MNV_ASSERT(tl_current.thread != nullptr);
  return *tl_current.thread;
}

// Ends a thread: wakes its requesters with EPIPE, frees its frames, leaves its process.
void end_thread(ThreadState* t);

// Coroutine frames of micro-threads come from the current process's micro-heap.
struct FrameAllocator {
  static void* operator new(std::size_t bytes) noexcept;
  static void operator delete(void* frame) noexcept;
};

class Thread {
 public:
  struct promise_type : FrameAllocator {
    ThreadState state;

    Thread get_return_object() {
      state.body = std::coroutine_handle<promise_type>::from_promise(*this);
      state.resume_at = state.body;
      return Thread(&state);
    }
    static Thread get_return_object_on_allocation_failure() { return Thread(); }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        end_thread(&h.promise().state);
        return std::noop_coroutine();
      }
      void await_resume() noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() noexcept;
  };

  Thread() = default;
  Thread(Thread&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
  Thread& operator=(Thread&& o) noexcept {
    reset();
    state_ = std::exchange(o.state_, nullptr);
    return *this;
  }
  ~Thread() { reset(); }

  // False when the frame could not be allocated (the heap was full).
  explicit operator bool() const { return state_ != nullptr; }
  ThreadRef get() const { return state_; }
  // Gives up ownership (the process takes it).
  ThreadRef release() { return std::exchange(state_, nullptr); }

 private:
  explicit Thread(ThreadState* s) : state_(s) {}
  void reset();
  ThreadState* state_ = nullptr;
};

// A thread's finally handler: a coroutine returning mnv::Finally, registered with
// `co_await mnv::finally(handler(...))`. See runtime/raise.h.
class Finally {
 public:
  struct promise_type : FrameAllocator {
    ThreadState* owner = nullptr;
    Finally get_return_object() { return Finally(std::coroutine_handle<promise_type>::from_promise(*this)); }
    static Finally get_return_object_on_allocation_failure() { return Finally(); }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        end_thread(h.promise().owner);  // a handler that ends, ends its thread
        return std::noop_coroutine();
      }
      void await_resume() noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() noexcept;
  };

  Finally() = default;
  Finally(Finally&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  ~Finally() {
    if (h_) h_.destroy();
  }
  explicit operator bool() const { return static_cast<bool>(h_); }
  std::coroutine_handle<promise_type> release() { return std::exchange(h_, nullptr); }

 private:
  explicit Finally(std::coroutine_handle<promise_type> h) : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

namespace detail {
template <typename T>
struct TaskValue {
  T value{};
  void return_value(T v) { value = std::move(v); }
  T take() { return std::move(value); }
};
template <>
struct TaskValue<void> {
  void return_void() {}
  void take() {}
};
// Raises ENOMEM for a Task whose frame could not be allocated.
std::coroutine_handle<> raise_no_frame(std::coroutine_handle<> at);
}  // namespace detail

// A helper coroutine awaited from a micro-thread (or another Task): `T v = co_await helper();`.
// Its frame comes from the same micro-heap; suspending inside it suspends the whole thread.
template <typename T = void>
class [[nodiscard]] Task {
 public:
  struct promise_type : FrameAllocator, detail::TaskValue<T> {
    std::coroutine_handle<> continuation;
    std::exception_ptr exception;
    Task get_return_object() { return Task(std::coroutine_handle<promise_type>::from_promise(*this)); }
    static Task get_return_object_on_allocation_failure() { return Task(); }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        std::coroutine_handle<> c = h.promise().continuation;
        this_thread().resume_at = c;
        return c;
      }
      void await_resume() noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    void unhandled_exception() { exception = std::current_exception(); }
  };

  Task(Task&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  Task& operator=(Task&&) = delete;
  ~Task() {
    if (h_) h_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
    if (!h_) return detail::raise_no_frame(caller);
    h_.promise().continuation = caller;
    this_thread().resume_at = h_;
    return h_;
  }
  // After a failed frame allocation (ENOMEM raised and lowered) this returns T{}.
  T await_resume() {
    if (!h_) return T();
    if (h_.promise().exception) std::rethrow_exception(h_.promise().exception);
    return h_.promise().take();
  }

 private:
  Task() = default;
  explicit Task(std::coroutine_handle<promise_type> h) : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

}  // namespace mnv
