// net/socket.h — a userland socket: a receive and a send vectoring, each bound to a pipe.
//
// A pipe end is either an fd (TCP, a pipe(2), a listening socket) or another Socket in the
// same process (the seed's logical sockets between micro-threads): the same blocking ops work
// over both. Apps use the public API below (the rings, the deadline, the sticky error, EOF,
// hup/rx_close) and the ops of net/io.h; the fields are the socket's own.
//
// fill() and drain() are the two non-blocking steps every op in net/io.h is built from; they
// report kAgain with the Block to wait on filled in, and never block themselves. Each moves the
// bytes by one of these transports, one private function each, chosen per call:
//  * a socket peer (fill_from_peer, drain_to_peer): the reader pulls straight from the writer's
//    send ring, so data is copied once; a side that must wait registers itself on the ring's
//    socket and is readied by the other side (no kernel involved);
//  * readiness (fill_by_readv, drain_by_writev): readv/writev on the fd, waiting for POLLIN /
//    POLLOUT after EAGAIN (or after a short read, which says the fd has nothing more);
//  * completion mode (runtime/completion_io.h, io_uring), for a socket bound with bind_fd() in a
//    kernel that offers it (KernelConfig::completion_io; never with isolation on):
//    fill_by_receive hands the poller one receive into the rx ring's free space, drain_by_send
//    one send of the tx ring's data; both go down with the kernel's next wait, so a message
//    costs no system call of its own. While one is in flight its ring is pinned (never
//    released, its free space never moved); the socket cancels what is still in flight before
//    its fd is closed or it is destroyed, and a receive still waiting when the process goes idle
//    is cancelled so the ring can go (input then wakes the thread through a readiness watch).
//    The result (bytes, 0 at EOF, -errno) is handled exactly as the readv/writev results are;
//    a completion wakes the waiting thread once (as kTransferDone, not as readiness).
//  * multishot receive (fill_multishot; KernelConfig::recv_multishot): one receive armed per fd
//    fills the poller's buffers; an empty rx reads the oldest buffer in place
//    (Vectoring::lend()) until it is consumed or more is needed, else the bytes are copied into
//    rx. The OS never writes into the rx ring, so nothing pins it, and an idle connection keeps
//    no ring and no buffer. Sends go by drain_by_send.
// A transfer that says ENOTSOCK (the fd is a pipe) turns the socket to readiness for good.
//
// Static output (add_static()): bytes the caller owns and keeps valid are queued by pointer
// instead of being copied into tx, in order with tx's bytes (net/gather_list.h); a drain sends
// both in one writev / sendmsg.
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>

#include "net/gather_list.h"
#include "net/vectoring.h"
#include "runtime/block.h"
#include "runtime/completion_io.h"
#include "runtime/process.h"
#include "runtime/thread.h"

namespace mnv {

class Socket : IdleHook, public ThreadIo {
 public:
  // kInFlight (drain only): the data is on its way (completion mode); `b` says what to wait on
  // for it to have gone, for a caller that needs the ring emptied.
  enum class Io { kProgress, kAgain, kEof, kError, kInFlight };

  Socket() : IdleHook(&Socket::on_idle) {}
  // Both directions on one fd (TCP). The socket closes it when destroyed.
  explicit Socket(int fd) : Socket() { bind_fd(fd); }
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // ---- wiring ----
  // Binds a socket fd for both directions; inside a kernel that offers it, in completion mode.
  void bind_fd(int fd);
  // Wires `from`'s output into `to`'s input (a one-way pipe between micro-threads).
  static void pipe(Socket& from, Socket& to);
  // Puts `child` between this socket and where its output went (a pipeline child, net/io.h):
  // this socket's output goes to `child`'s input, and `child`'s output goes to this socket's old
  // peer (whose waiting reader now waits on `child`) or, borrowed, to its fd.
  void insert_after(Socket& child);
  int rx_fd() const { return rx_fd_; }
  int tx_fd() const { return tx_fd_; }
  Socket* rx_peer() const { return rx_peer_; }
  Socket* tx_peer() const { return tx_peer_; }

  // ---- state and settings ----
  // The receive and send rings (net/vectoring.h): buffered input, and output not yet sent.
  Vectoring& rx() { return rx_; }
  Vectoring& tx() { return tx_; }
  const Vectoring& rx() const { return rx_; }
  const Vectoring& tx() const { return tx_; }
  // The deadline of each blocking op on this socket, from when it first blocks; 0: none.
  std::int64_t timeout_ns() const { return timeout_ns_; }
  void set_timeout_ns(std::int64_t ns) { timeout_ns_ = ns; }
  // The sticky error from the pipes (ECONNRESET, EPIPE...), 0 if none: every later op raises it.
  int error() const { return error_; }
  // Records `code` as the sticky error (the first one stays).
  void set_error(int code) {
    if (error_ == 0) error_ = code;
  }
  // The input has ended (a read returned 0, the peer hung up, or rx_close()).
  bool eof() const { return rx_eof_; }
  // Forgets that the input ended (the seed's vk_clear), so the next read tries again.
  void clear_eof() { rx_eof_ = false; }
  // This socket's output has ended (hup()).
  bool hung_up() const { return hung_up_; }
  // Whether n more bytes could be buffered for sending now, without an op (no error, output
  // not ended, and room in the send ring).
  bool takes(std::size_t n) { return error_ == 0 && !hung_up_ && tx_.ensure() && tx_.space() >= n; }
  // Whether output waits to be sent: in tx, or added with add_static().
  bool has_output() const { return !tx_.empty() || (gather_ != nullptr && !gather_->empty()); }

  // ---- static output ----
  // Queues the n bytes at p for sending without copying them: they go out after everything
  // written before and before everything written after (sent together with tx's bytes, one
  // writev / sendmsg). Lifetime: the bytes are the caller's and must stay valid and unchanged
  // until they have been sent (a flush() returned) or the socket is destroyed; static storage,
  // or memory that outlives every connection (a file loaded at start), meets that always. False,
  // with nothing queued, when the output is not this socket's own fd (a socket peer, a pipeline
  // child), it has ended or failed, n is 0 or over 4 GiB, GatherList::kMaxPieces pieces are
  // already waiting, or the heap cannot hold the list: write() the bytes instead.
  bool add_static(const void* p, std::size_t n);

  // ---- non-blocking ops ----
  // Ends the output: the socket peer's reader sees EOF once it has read everything, an fd gets
  // shutdown(SHUT_WR). Idempotent.
  void hup();
  // Stops reading: buffered input is dropped, an fd gets shutdown(SHUT_RD).
  void rx_close();

  // ---- the two steps every op in net/io.h is built from ----
  // Reads whatever the rx pipe has into rx (never blocks). On kAgain, `b` says what to wait on.
  Io fill(Block& b);
  // Sends what tx holds into the tx pipe (never blocks). kProgress once tx is empty (and no
  // send is in flight).
  Io drain(Block& b);
  // The poller reported `revents` for the fd a fill() or drain() waited on.
  void on_ready(std::uint32_t revents) {
    if (revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) rx_drained_ = false;
    if (revents & (POLLRDHUP | POLLHUP | POLLERR)) rx_hup_ = true;
  }
  // Wakes a thread of this process waiting for this socket's send ring to have data / space.
  void wake_reader();
  void wake_writer();
  // Thread `t` no longer waits on this socket (its op ended or is retried).
  void forget_waiter(ThreadRef t) {
    if (data_waiter_ == t) data_waiter_ = nullptr;
    if (space_waiter_ == t) space_waiter_ = nullptr;
  }
  // Gives back both rings (and the static output's list) if they are empty (the input has
  // ended).
  void release_idle_rings() {
    rx_.release_if_empty();
    tx_.release_if_empty();
    release_gather_list();
  }
  // The thread is about to wait for input. Its rings stay allocated while the process is busy
  // (a connection that is answering messages would otherwise free and allocate them again for
  // every message); the kernel's trim pass gives them back, when empty, once the process has
  // been idle for a while (Process::release_idle()).
  void keep_rings_until_idle() {
    if (rx_.allocated() || tx_.allocated() || gather_ != nullptr) this_process().release_when_idle(this);
  }

 private:
  // Whether transfers go through cio_: bound with bind_fd() in completion mode, and the fd did
  // not turn out not to be a socket.
  bool completion() const { return cio_ != nullptr && !not_socket_; }
  bool tx_completion() const { return completion() && owns_tx_fd_ && tx_fd_ == rx_fd_; }
  // Whether input comes through the poller's multishot receive (completion_io.h).
  bool rx_multishot() const { return completion() && rx_peer_ == nullptr && rx_fd_ >= 0 && cio_->recv_multishot(); }
  // fill() and drain(), one function per transport.
  Io fill_from_peer(Block& b);
  Io fill_multishot(Block& b);
  Io fill_by_receive(Block& b);
  Io fill_by_readv(Block& b);
  Io drain_to_peer(Block& b);
  Io drain_by_send(Block& b);
  Io drain_by_writev(Block& b);
  void not_a_socket();
  bool received(std::int32_t r, Io* io);
  void cancel_transfers();
  // Gives a buffer lent by the poller (rx reads it in place) back; rx must be done with it.
  void return_loan();
  // Takes the finished send's result: the sent bytes leave tx. False (with `error` set) if it
  // failed.
  bool settle_send();
  // n bytes of the output were sent: they leave tx (and the static pieces).
  void consume_sent(std::size_t n) {
    if (gather_ != nullptr) {
      gather_->consume(tx_, n);
    } else {
      tx_.consume(n);
    }
  }
  // The output as iovecs (at most GatherList::kMaxIov); returns how many.
  int output_iov(iovec* out) const { return gather_ != nullptr ? gather_->gather(tx_, out) : tx_.data_iov(out); }
  // Frees the static output's list when nothing waits in it and no send uses it.
  void release_gather_list();
  void set_tx_peer(Socket* to);

  Vectoring rx_;
  Vectoring tx_;
  GatherList* gather_ = nullptr;  // static output (add_static()), from the micro-heap, or null
  std::int64_t timeout_ns_ = 0;
  int error_ = 0;
  bool rx_eof_ = false;
  bool hung_up_ = false;
  bool rx_closed_ = false;  // rx_close(): input is not read any more
  // The last read from the rx fd came back short, so the fd had nothing more: the next fill()
  // waits for readiness without another read(2) that would only say EAGAIN. (A stream socket
  // returns short only when its queue is empty; new data after that raises a new event in every
  // backend.) Cleared by a readiness event. Never set once the peer's hang-up was reported
  // (rx_hup_): an end of input that came with the data raises no new event, so the read that
  // returns 0 must still be made. In completion mode: the last receive left the socket empty,
  // so the next one waits for data before trying.
  bool rx_drained_ = false;
  bool rx_hup_ = false;                // POLLRDHUP, POLLHUP or POLLERR was reported for the rx fd
  ThreadRef data_waiter_ = nullptr;   // a reader waiting for tx (pulled by the peer) to get data
  ThreadRef space_waiter_ = nullptr;  // a writer waiting for tx to drain into the peer
  CompletionIo* cio_ = nullptr;  // completion-mode I/O (runtime/completion_io.h), or null
  Transfers xfer_;               // its receive into rx's free space and send of tx's data; a
                                 // busy one pins its ring
  bool not_socket_ = false;      // a transfer said ENOTSOCK: readv/writev from then on
  std::uint32_t rx_loan_ = 0;    // multishot receive: the poller's buffer rx reads in place
  int rx_fd_ = -1;
  int tx_fd_ = -1;
  Socket* rx_peer_ = nullptr;  // input is pulled from this socket's tx
  Socket* tx_peer_ = nullptr;  // output is pulled by this socket
  bool owns_tx_fd_ = true;

  static void on_idle(IdleHook* h);
};

// Closes an fd owned by the current process: through the kernel if one runs, else close(2).
void close_owned_fd(int fd);

}  // namespace mnv
