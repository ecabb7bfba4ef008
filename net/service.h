// net/service.h — services: a listening server that runs one micro-process per connection.
//
// The seed's vk_server/vk_service/vk_accepted. A Server binds (address, port, backlog), owns a
// heap pool of `pool_size` micro-heaps of `heap_pages` pages each, and runs a listener thread
// in a process of its own. Each accepted connection (non-blocking, TCP_NODELAY) gets a new
// micro-process whose one thread owns a Socket on the fd as its default socket and runs the
// handler:
//
//   mnv::Task<> echo(mnv::Accepted& conn) { ... co_await mnv::readline(buf, n); ... }
//
// When the handler returns, pending output is flushed and the connection closed; when its
// thread ends any other way (an unhandled raise), the process is reclaimed with its fd.
// The listener's process also runs the server's supervisor thread (runtime/supervise.h): every
// connection process is supervised by it, tagged with its peer, so a connection that dies of a
// trap or of ENOMEM is logged with its peer address and port and the signal or pages needed,
// and counted (deaths()); everything else keeps being served.
// A full pool refuses the connection (close, one log line per second) and everyone else keeps
// being served; EMFILE/ENFILE on accept backs off (net/io.h).
//
// Idle connections end: ServerConfig::idle_timeout_ns (60 s by default) is the deadline of each
// blocking op on a connection's socket, so a client that sends nothing (or too little to finish
// the read in hand) for that long is closed quietly.
//
// Graceful shutdown: drain() stops accepting, ends every connection's input (an idle one closes
// at once) and makes draining() true, so a busy handler answers the request in hand and ends
// instead of reading the next (see drain()).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "mem/heap_pool.h"
#include "net/server_metrics.h"
#include "runtime/kernel.h"
#include "runtime/supervise.h"
#include "runtime/thread.h"

namespace mnv {

class Server;

// What a connection's handler is given (the seed's vk_accepted).
struct Accepted {
  Server* server;
  int fd;
  sockaddr_storage peer;
  socklen_t peer_len;
  void* message;  // ServerConfig::message

  // Whether the server is shutting down (Server::draining()): finish the request in hand, then
  // return (HTTP: answer it with Connection: close).
  bool draining() const;
};

using Handler = Task<> (*)(Accepted& conn);
// Sees each accepted fd before it is served here; returning true means it took the fd (e.g.
// handed it to another shard).
using AcceptHook = bool (*)(Server& server, int fd, const sockaddr_storage& peer, socklen_t len, void* ctx);

// What a server counts, written by its kernel's thread and readable from anywhere. A server
// keeps its own, or the ones ServerConfig::counters points at: memory another shard can read
// when shards are processes (a SharedRegion, shard/shared_memory.h), e.g. for balancing. A new
// server on counters already used (a restarted shard's) adds to accepted, refused and deaths,
// and starts active at 0.
struct ServerCounters {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> refused{0};
  std::atomic<std::uint64_t> deaths{0};  // connection processes that died of a trap or an error
  std::atomic<long> active{0};            // connections being served now
};

struct ServerConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: the OS picks a free port; see Server::port()
  int backlog = 1024;
  Handler handler = nullptr;
  std::size_t heap_pages = 8;    // page budget of each connection's micro-heap
  std::size_t pool_size = 1024;  // connections served at once
  void* message = nullptr;       // handed to every handler in Accepted::message
  // Idle timeout: the deadline of each blocking op on a connection's socket (a read waiting for
  // input, a write or flush waiting for the peer to take output); the op that misses it raises
  // ETIMEDOUT and the connection ends quietly. The clock starts when the op first blocks and
  // bytes that do not finish it do not restart it: a line read that gets one byte every 2 s
  // with a 1 s timeout ends after 1 s. So it is both an idle timeout (between requests) and a
  // deadline for reading one request line (a trickling client cannot hold a heap forever).
  // Protocol layers may add tighter deadlines of their own (HTTP's header/body/keep-alive).
  // 60 s by default: far above any pause of a live client or a request on a slow link, short
  // enough that abandoned connections cannot fill the pool for long. 0 = none (held forever).
  std::int64_t idle_timeout_ns = 60'000'000'000;
  bool reuse_port = false;       // SO_REUSEPORT (one listener per shard)
  AcceptHook on_accept = nullptr;
  void* on_accept_ctx = nullptr;
  ServerCounters* counters = nullptr;  // null: the server's own
  // The series this server counts into its kernel's metric cells (net/server_metrics.h), or
  // null: none.
  const ServerMetrics* metrics = nullptr;
};

class Server {
 public:
  // Binds and listens, and starts the listener process in `kernel`. Null with *error set on
  // failure (bad address, port in use, pool reservation).
  static std::unique_ptr<Server> listen(Kernel& kernel, const ServerConfig& config, std::string* error);
  ~Server();

  const ServerConfig& config() const { return config_; }
  std::uint16_t port() const { return port_; }
  HeapPool& pool() { return pool_; }
  // Counters written by the server's kernel thread, readable from any thread.
  std::uint64_t accepted() const { return counters_->accepted.load(std::memory_order_relaxed); }
  std::uint64_t refused() const { return counters_->refused.load(std::memory_order_relaxed); }
  // Connection processes that died of a trap or an error no handler took.
  std::uint64_t deaths() const { return counters_->deaths.load(std::memory_order_relaxed); }
  // Connections being served now (readable from other threads, e.g. for balancing).
  long active() const { return counters_->active.load(std::memory_order_relaxed); }

  // Graceful shutdown, for SIGTERM (the server skeleton calls it once its kernel is stopping).
  // Call it on the server's kernel thread, outside a dispatch: from a KernelHooks callback
  // (on_turn). Idempotent; nothing to undo. From then on:
  //  - nothing is accepted: the listening socket is shut down (new clients are refused; the
  //    listener thread ends quietly) and an fd handed to start_connection() is closed;
  //  - every connection's input ends: its fd is shut down for reading, so a handler waiting for
  //    input with nothing buffered reads end-of-input and returns, and the connection closes at
  //    once (idle connections); input that had already arrived is still read;
  //  - draining() is true: a busy handler finishes the request in hand, answers it (HTTP: with
  //    Connection: close), and returns instead of reading the next one.
  // The kernel's grace period (KernelConfig::grace_ns) still bounds how long that may take.
  void drain();
  // drain() was called, or the server's kernel is stopping (readable from its processes).
  bool draining() const { return draining_ || kernel_.stopping(); }

  // Serves an accepted fd in a new micro-process here (the listener calls it; so may a shard
  // that was handed the fd). A full pool refuses it; so does a draining server.
  void start_connection(int fd, const sockaddr_storage& peer, socklen_t len);
  // Internal: a connection's thread ended (`index`: its heap's slot in pool()); a connection's
  // process died (told by the server's supervisor thread); the listener thread ended.
  void connection_ended(std::size_t index);
  void connection_died(const Death& death);
  void listener_ended() { listening_ = false; }
  // Internal: a connection ended this way (ServerMetrics::Close).
  void count_close(ServerMetrics::Close how) {
    if (config_.metrics != nullptr) kernel_.metrics().add(config_.metrics->closed[how]);
  }
  int listen_fd() const { return listen_fd_; }

 private:
  Server(Kernel& kernel, const ServerConfig& config);
  Kernel& kernel_;
  ServerConfig config_;
  HeapPool pool_;
  HeapPool listener_pool_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  Supervisor supervisor_;  // the supervisor thread, in the listener's process
  ServerCounters own_counters_;
  ServerCounters* counters_;  // own_counters_ or ServerConfig::counters
  std::int64_t last_refusal_log_ = 0;
  // The fd of the connection served on each heap of pool_ (by index_of), -1 for none: what
  // drain() shuts down. Written only on the kernel's thread.
  std::unique_ptr<int[]> conn_fds_;
  // Connections started on each heap of pool_: tells a trapped connection's late death report
  // (connection_died) from the heap's next connection.
  std::unique_ptr<std::uint32_t[]> conn_gens_;
  bool listening_ = false;  // the listener thread is alive (its fd is still listen_fd_)
  bool draining_ = false;
};

inline bool Accepted::draining() const { return server->draining(); }

// Resolves a numeric IPv4/IPv6 host and port into addr; false if the host is not numeric.
bool make_address(const std::string& host, std::uint16_t port, sockaddr_storage* addr, socklen_t* len);

}  // namespace mnv
