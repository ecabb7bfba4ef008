// net/socket.h — a userland socket: a receive and a send vectoring, each bound to a pipe.
//
// A pipe end is either an fd (TCP, a pipe(2), a listening socket) or another Socket in the
// same process (the seed's logical sockets between micro-threads): the same blocking ops work
// over both. Between sockets the reader pulls straight from the writer's send ring, so data is
// copied once; a reader or writer that must wait registers itself on the ring's socket and is
// readied by the other side (no kernel involved).
//
// fill() and drain() are the two non-blocking steps every op in net/io.h is built from; they
// report kAgain with the Block to wait on filled in, and never block themselves.
//
// Completion mode: a socket bound with bind_fd() inside a kernel that offers completion-mode
// I/O (runtime/completion_io.h: io_uring) does not readv/writev its fd (with isolation on, only
// its input: the multishot receive below; sends stay writev()s made while the heap is open). fill()
// hands the poller a receive into the rx ring's free space and reports kAgain until it has
// finished; drain() hands it a send of the tx ring's data and reports kInFlight until it has
// finished. Both go down with the kernel's next wait, so a message costs no system call of its
// own. While a transfer is in flight its ring is pinned (never released, its free space never
// moved); the socket cancels what is still in flight before its fd is closed or it is destroyed.
// EOF, errors and ECONNRESET come back as the transfer's result and are handled exactly as the
// readv/writev results are. A receive still waiting when the process goes idle is cancelled so
// the rx ring can be given back; input then wakes the thread through a readiness watch again.
// Where the poller offers a multishot receive (the default with io_uring), fill() instead arms
// it once and takes what it received from the poller's buffers: an empty rx reads the oldest
// buffer in place (Vectoring::lend()) until it is consumed or more is needed, else the bytes are
// copied into rx. The OS never writes into the rx ring, so nothing pins it, and an idle
// connection keeps no ring and no buffer.
#pragma once

#include <cstdint>

#include "net/vectoring.h"
#include "runtime/block.h"
#include "runtime/completion_io.h"
#include "runtime/process.h"
#include "runtime/thread.h"

namespace mnv {

class Socket : IdleHook {
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

  // Binds a socket fd for both directions; inside a kernel that offers it, in completion mode.
  void bind_fd(int fd);
  // Wires `from`'s output into `to`'s input (a one-way pipe between micro-threads).
  static void pipe(Socket& from, Socket& to);

  int rx_fd() const { return rx_fd_; }
  int tx_fd() const { return tx_fd_; }
  Socket* rx_peer() const { return rx_peer_; }
  Socket* tx_peer() const { return tx_peer_; }
  // Redirects output to another socket (used to build pipelines).
  void set_tx_peer(Socket* to);
  // Sends output to an fd that another socket owns (and closes); writev.
  void borrow_tx_fd(int fd) {
    MNV_ASSERT(!xfer_.tx.busy());
    tx_fd_ = fd;
    owns_tx_fd_ = false;
  }

  // Reads whatever the rx pipe has into rx (never blocks). On kAgain, `b` says what to wait on.
  Io fill(Block& b);
  // Sends what tx holds into the tx pipe (never blocks). kProgress once tx is empty (and no
  // send is in flight).
  Io drain(Block& b);
  // Wakes a thread of this process waiting for this socket's send ring to have data / space.
  void wake_reader();
  void wake_writer();
  // Gives back both rings if they are empty (the input has ended).
  void release_idle_rings() {
    rx.release_if_empty();
    tx.release_if_empty();
  }
  // The thread is about to wait for input. Its rings stay allocated while the process is busy
  // (a connection that is answering messages would otherwise free and allocate them again for
  // every message); the kernel's trim pass gives them back, when empty, once the process has
  // been idle for a while (Process::release_idle()).
  void keep_rings_until_idle() {
    if (rx.allocated() || tx.allocated()) this_process().release_when_idle(this);
  }

  Vectoring rx;
  Vectoring tx;
  std::int64_t timeout_ns = 0;  // deadline for each blocking op on this socket; 0 = none
  int error = 0;                // sticky error from the pipes (ECONNRESET, EPIPE...)
  bool rx_eof = false;          // the input has ended (read returned 0, or the peer hung up)
  bool hung_up = false;         // this socket's output has ended (hup() / tx_close())
  bool rx_closed = false;
  bool tx_closed = false;
  // The last read from the rx fd came back short, so the fd had nothing more: the next fill()
  // waits for readiness without another read(2) that would only say EAGAIN. (A stream socket
  // returns short only when its queue is empty; new data after that raises a new event in every
  // backend.) Cleared by a readiness event. Never set once the peer's hang-up was reported
  // (rx_hup): an end of input that came with the data raises no new event, so the read that
  // returns 0 must still be made. In completion mode: the last receive left the socket empty,
  // so the next one waits for data before trying.
  bool rx_drained = false;
  bool rx_hup = false;  // POLLRDHUP, POLLHUP or POLLERR was reported for the rx fd
  ThreadRef data_waiter = nullptr;   // a reader waiting for tx (pulled by the peer) to get data
  ThreadRef space_waiter = nullptr;  // a writer waiting for tx to drain into the peer

 private:
  // Whether transfers go through cio_: bound with bind_fd() in completion mode, and the fd did
  // not turn out not to be a socket.
  bool completion() const { return cio_ != nullptr && !not_socket_; }
  bool tx_completion() const { return completion() && owns_tx_fd_ && tx_fd_ == rx_fd_; }
  // Whether input comes through the poller's multishot receive (completion_io.h).
  bool rx_multishot() const { return completion() && rx_peer_ == nullptr && rx_fd_ >= 0 && cio_->recv_multishot(); }
  void not_a_socket();
  bool received(std::int32_t r, Io* io);
  void cancel_transfers();
  // Gives a buffer lent by the poller (rx reads it in place) back; rx must be done with it.
  void return_loan();
  // Takes the finished send's result: the sent bytes leave tx. False (with `error` set) if it
  // failed.
  bool settle_send();

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
