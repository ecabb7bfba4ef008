// runtime/completion_io.h — completion-mode socket I/O: receives and sends that the poller
// performs itself, so a message costs no read/write system call of its own.
//
// Why: in readiness mode every message on a connection costs a readv and a writev (plus the
// poller's share of a wait); with io_uring the receive and the send can instead go down as SQEs
// with the loop's single io_uring_enter and come back as CQEs, so the per-message system calls
// disappear. Only a poller that can do this offers it (Poller::completion_io(); io_uring does,
// epoll and poll do not). Transfers use micro-heap memory directly (the OS reads a send from the
// socket's ring, a single receive writes into it) and the multishot receive below leaves input
// in buffers every process can reach, so the kernel uses completion mode only with isolation off
// (KernelConfig::completion_io).
//
// The contract. A socket owns a Transfers pair (in its own memory, next to its rings) and uses it
// for one fd: at most one receive and one send in flight at a time.
//  * recv()/send() prepare the request at once; it goes down with the next Poller::wait() (or
//    earlier, when the submission queue is full). While a transfer is busy() its buffer must stay
//    allocated and untouched (a socket pins its ring).
//  * The poller writes the result into the Transfer (done(), res) when its CQE is reaped, during
//    wait(); the owner reads it with take(), which makes the transfer idle again. Until the owner
//    detach()es its pair (or the fd is forgotten), the poller keeps a pointer to it.
//  * A finished transfer is reported once, by wait(), as kTransferDone on the fd (below): not
//    readiness (the fd need not be readable or writable now) but "a result waits to be taken";
//    whoever waits on the fd is woken and takes it. A finished receive is always reported; a
//    finished send only when the fd's interest includes POLLOUT (someone waits for it), or when
//    it failed; otherwise it just waits to be taken.
//  * While a transfer is busy it stands in for readiness: interest() in POLLIN (POLLOUT) arms no
//    readiness watch for an fd whose receive (send) is on its way.
//  * A send transfers all of its bytes or fails: short sends are continued by the poller.
//  * cancel() is synchronous (one system call when the transfer is in flight): on return the OS
//    no longer uses the buffer. forget(fd) cancels whatever is still in flight on fd and detaches.
//
// Multishot receive (recv_multishot(), io_uring with provided buffers): instead of one receive
// per message into the socket's own ring, one receive stays armed on the fd and the OS fills
// buffers that the poller owns (never a micro-heap). The socket arms it with arm_recv() when it
// finds nothing queued, and copies what arrived into its ring with take_recv() while its process
// runs (or, when its ring is empty, reads the buffer in place: lend_recv()); each buffer goes
// back to the poller as soon as it is copied (or read). Arrivals, the end of input and an error
// are reported by wait() as kTransferDone. An armed receive is the fd's watch on input, so
// an idle connection keeps no ring of its own: only the poller's state for its fd. A socket whose
// process does not read stops the receive after a few queued buffers (backpressure: the rest
// waits in the OS socket) and the next arm_recv() starts it again.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>

namespace mnv {

// The event bit (PollEvent::events) with which wait() reports a finished transfer or multishot
// arrival on an fd. Outside the POLL* bits: it wakes whoever waits on the fd (the kernel matches
// it against every waiter, runtime/kernel.cc) without claiming the fd is ready.
inline constexpr std::uint32_t kTransferDone = 1u << 30;

// A gathered send's pieces (send_vector()), in the caller's memory: more pieces than send()
// takes, sent with one request (sendmsg). `msg` names `iov[0..count)`; the poller fills it in.
struct SendVector {
  static constexpr int kMaxPieces = 40;
  msghdr msg;
  iovec iov[kMaxPieces];
  int count = 0;
};

// One direction's transfer. Written by the poller while busy; all-zero is idle.
struct Transfer {
  enum class Phase : std::uint8_t { kIdle, kInFlight, kDone };
  Phase phase = Phase::kIdle;
  bool more = false;         // receive: the socket still held data when it finished
  std::uint8_t count = 0;    // send: pieces in iov
  std::uint8_t index = 0;    // send: the piece being sent
  std::uint32_t seq = 0;     // the poller's: which CQEs are this transfer's
  std::int32_t res = 0;      // once done: bytes (a send: all of them), 0 at end of input, -errno
  std::uint32_t offset = 0;  // send: bytes of iov[index] already sent
  std::uint32_t total = 0;   // send: bytes of the pieces before iov[index]
  iovec iov[2] = {};         // receive: iov[0]
  SendVector* vec = nullptr;  // send: a gathered send's pieces (send_vector()), else null

  bool busy() const { return phase != Phase::kIdle; }
  bool done() const { return phase == Phase::kDone; }
  // A finished transfer's result (see res); the transfer is idle again.
  std::int32_t take() {
    phase = Phase::kIdle;
    return res;
  }
};

// A socket's receive and send on its fd.
struct Transfers {
  Transfer rx;
  Transfer tx;
};

class CompletionIo {
 public:
  // Starts a receive of up to `len` (> 0) bytes into `buf` on socket `fd` (x->rx idle).
  // `poll_first`: the socket was just found empty, so it waits for data instead of trying.
  // A receive from something that is not a socket finishes with -ENOTSOCK.
  virtual void recv(int fd, Transfers* x, void* buf, std::uint32_t len, bool poll_first) = 0;
  // Starts a send of iov[0..n) (1 <= n <= 2, no piece empty) on socket `fd` (x->tx idle).
  virtual void send(int fd, Transfers* x, const iovec* iov, int n) = 0;
  // Starts a send of v->iov[0..v->count) (1 <= count <= kMaxPieces, no piece empty) as one
  // sendmsg on socket `fd` (x->tx idle). `v` is the caller's and stays valid, untouched by the
  // caller, while the send is busy: the poller advances its pieces in place after a short send.
  virtual void send_vector(int fd, Transfers* x, SendVector* v) = 0;
  // Cancels x's receive (or send) on fd. On return the OS no longer uses its buffer, and the
  // transfer is idle (cancelled: for a receive, nothing was received), done (it had finished:
  // take() its result), or, when it finished just now, still busy until the next wait() brings
  // its result. A send cancelled may have sent some of its bytes.
  virtual void cancel(int fd, Transfers* x, bool send) = 0;
  // x is going away: the poller forgets it (both transfers idle or done).
  virtual void detach(int fd, Transfers* x) = 0;

  // Whether sockets receive with a multishot receive (see above) instead of recv(): the poller
  // can, and it was not turned off with enable_recv_multishot(false).
  virtual bool recv_multishot() const { return false; }
  virtual void enable_recv_multishot(bool on) { (void)on; }
  // Whether fd has received data (or its end) queued for take_recv().
  virtual bool recv_queued(int fd) = 0;
  // Makes sure a multishot receive is armed on socket fd (no-op when one is, or input ended).
  virtual void arm_recv(int fd) = 0;
  // Copies queued input into iov[0..n) (the socket ring's free space, n >= 1, nothing empty):
  // the bytes copied (> 0); 0 at the end of input; -errno once the receive failed (ENOTSOCK:
  // fd is not a socket); -EAGAIN when nothing is queued.
  virtual std::int32_t take_recv(int fd, const iovec* iov, int n) = 0;
  // Lends the oldest queued buffer's bytes instead of copying them: sets *data and *len (> 0)
  // and returns a token for give_back(), or 0 (nothing changed) when no data is queued. The
  // buffer leaves fd's queue; until it is given back (or fd is forgotten: a socket that is never
  // destroyed, e.g. in a trapped process, loses nothing) the poller does not reuse it. One loan
  // per fd at a time.
  virtual std::uint32_t lend_recv(int fd, const char** data, std::uint32_t* len) = 0;
  virtual void give_back(int fd, std::uint32_t token) = 0;

 protected:
  ~CompletionIo() = default;

 private:
};

}  // namespace mnv
