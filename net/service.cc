#include "net/service.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "mem/log.h"
#include "net/io.h"
#include "net/socket.h"
#include "runtime/process.h"
#include "runtime/raise.h"

namespace mnv {

bool make_address(const std::string& host, std::uint16_t port, sockaddr_storage* addr, socklen_t* len) {
  std::memset(addr, 0, sizeof *addr);
  auto* v4 = reinterpret_cast<sockaddr_in*>(addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *len = sizeof *v4;
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(addr);
  std::string h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    *len = sizeof *v6;
    return true;
  }
  return false;
}

namespace {

Finally listener_error(Server* server) {
  // (After drain() the listening socket is shut down on purpose: accept then fails, quietly.)
  if (!server->draining()) {
    char buf[256];
    log_line("mnv: listener on port %u stopped: %s", server->port(), error().describe(buf, sizeof buf));
  }
  co_return;
}

// Tells the server when the listener thread is gone (its socket then has closed the listening
// fd), however it ends: a parameter, so it is destroyed with the frame even if the thread never
// ran.
class ListenerAlive {
 public:
  explicit ListenerAlive(Server* server) : server_(server) {}
  ListenerAlive(ListenerAlive&& other) noexcept : server_(std::exchange(other.server_, nullptr)) {}
  ListenerAlive(const ListenerAlive&) = delete;
  ListenerAlive& operator=(const ListenerAlive&) = delete;
  ~ListenerAlive() {
    if (server_ != nullptr) server_->listener_ended();
  }
  Server* server() const { return server_; }

 private:
  Server* server_;
};

Thread listener(ListenerAlive alive) {
  Server* server = alive.server();
  co_await finally(listener_error(server));
  Socket sock(server->listen_fd());
  for (;;) {
    sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int fd = co_await accept(sock, &peer, &len);
    const ServerConfig& c = server->config();
    if (c.on_accept != nullptr && c.on_accept(*server, fd, peer, len, c.on_accept_ctx)) continue;
    server->start_connection(fd, peer, len);
  }
}

// The server's supervisor thread: told of each connection process that dies. It lives in a
// process of its own, so on SIGTERM it outlives the listener and still reports connections that
// die during the grace period; it ends when the last of them is gone.
Thread watchdog(Server* server) {
  for (;;) {
    Death d = co_await reap();
    server->connection_died(d);  // (an empty one only counts what was dropped, if anything)
    if (!d) break;
  }
}

// What the supervisor attaches to each connection: who it was.
struct ConnectionTag {
  std::uint16_t family;
  std::uint16_t port;  // host order
  std::int32_t fd;
  unsigned char addr[16];
  std::uint32_t index;  // its heap in the pool, and that heap's connection count then
  std::uint32_t gen;
};
static_assert(sizeof(ConnectionTag) <= ChildNote::kBytes);

ConnectionTag connection_tag(int fd, const sockaddr_storage& peer, std::uint32_t index, std::uint32_t gen) {
  ConnectionTag t{peer.ss_family, 0, fd, {}, index, gen};
  if (peer.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&peer);
    t.port = ntohs(v4->sin_port);
    std::memcpy(t.addr, &v4->sin_addr, sizeof v4->sin_addr);
  } else if (peer.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&peer);
    t.port = ntohs(v6->sin6_port);
    std::memcpy(t.addr, &v6->sin6_addr, sizeof v6->sin6_addr);
  }
  return t;
}

// "127.0.0.1:5000", "[::1]:5000", or "?" for an address of another family.
const char* format_peer(const ConnectionTag& t, char* buf, std::size_t len) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (t.family != AF_INET && t.family != AF_INET6) return "?";
  ::inet_ntop(t.family, t.addr, host, sizeof host);
  std::snprintf(buf, len, t.family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, t.port);
  return buf;
}

// A connection's default finally handler: resets, broken pipes and timeouts are routine at
// scale and end the connection quietly; anything else is logged once. Handlers may register
// their own.
// (The log line's buffer is on this function's stack, not in the handler's frame, which every
// connection holds while it lives: an idle connection's heap fits in one page.)
void log_connection_error(int fd) {
  char buf[256];
  log_line("mnv: connection fd %d ended: %s", fd, error().describe(buf, sizeof buf));
}

Finally connection_error(int fd) {
  int code = error().code;
  if (code == EFAULT || code == ENOMEM) this_process().note_death(error());
  // Traps and exhaustion are reported by the server, the process's supervisor.
  if (code != ECONNRESET && code != EPIPE && code != ETIMEDOUT && code != ENOTCONN && code != EFAULT &&
      code != ENOMEM) {
    log_connection_error(fd);
  }
  co_return;
}

// Counts the connection as ended, and forgets its fd (Server::drain()), however its thread ends:
// a parameter, so it is destroyed with the frame even if the thread never ran, and by the
// caller if the frame did not fit.
class ConnectionSlot {
 public:
  ConnectionSlot(Server* server, std::size_t index) : server_(server), index_(index) {}
  ConnectionSlot(ConnectionSlot&& other) noexcept
      : server_(std::exchange(other.server_, nullptr)), index_(other.index_) {}
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot() {
    if (server_ != nullptr) server_->connection_ended(index_);
  }
  Server* server() const { return server_; }

 private:
  Server* server_;
  std::size_t index_;
};

// Counts how the connection ended (ServerMetrics::Close) when its thread ends, unless its
// process died (a trap leaves the frame as it is; the supervisor counts those): a local declared
// after the socket, so it is destroyed first and still sees it.
class CloseCount {
 public:
  CloseCount(Server* server, const Socket& sock) : server_(server), sock_(sock), thread_(this_thread()) {}
  CloseCount(const CloseCount&) = delete;
  CloseCount& operator=(const CloseCount&) = delete;
  ~CloseCount() {
    if (server_->config().metrics == nullptr) return;
    int code = thread_.error.code;
    const Process& p = this_process();  // (set wherever a thread ends: its dispatch, or its reclaim)
    if (p.faulted() || p.death().code != 0) return;  // counted by connection_died
    if (code == EFAULT || code == ENOMEM) return;
    if (code == ETIMEDOUT) {
      server_->count_close(ServerMetrics::kTimeout);
    } else if (code != 0 || sock_.error() != 0) {
      server_->count_close(ServerMetrics::kError);
    } else if (sock_.eof() && !server_->draining()) {
      server_->count_close(ServerMetrics::kPeer);
    } else {
      server_->count_close(ServerMetrics::kServer);
    }
  }

 private:
  Server* server_;
  const Socket& sock_;
  const ThreadState& thread_;
};

Thread connection(ConnectionSlot slot, int fd, sockaddr_storage peer, socklen_t len) {
  Server* server = slot.server();
  co_await finally(connection_error(fd));
  Socket sock(fd);
  CloseCount close_count(server, sock);
  sock.set_timeout_ns(server->config().idle_timeout_ns);
  set_default_socket(sock);
  Accepted conn{server, fd, peer, len, server->config().message};
  co_await server->config().handler(conn);
  co_await flush();
}

}  // namespace

Server::Server(Kernel& kernel, const ServerConfig& config)
    : kernel_(kernel),
      config_(config),
      // With isolation each heap is its own kernel VMA, so protecting it is cheap (mem/heap_pool.h).
      pool_(config.heap_pages, config.pool_size, 1,
            kernel.isolation() == IsolationMode::kOff ? HeapPool::Guards::kNone : HeapPool::Guards::kSeparate),
      listener_pool_(4, 2),  // the listener process and the supervisor's
      counters_(config.counters != nullptr ? config.counters : &own_counters_),
      conn_fds_(new int[config.pool_size]),
      conn_gens_(new std::uint32_t[config.pool_size]()) {
  for (std::size_t i = 0; i < config.pool_size; ++i) conn_fds_[i] = -1;
  // Shared counters may be a predecessor's (a restarted shard's server): what it accepted and
  // what died add up, but none of its connections is this server's.
  counters_->active.store(0, std::memory_order_relaxed);
}

Server::~Server() {
  // The listener process is reclaimed by the kernel (which closes the listening fd).
}

std::unique_ptr<Server> Server::listen(Kernel& kernel, const ServerConfig& config, std::string* error) {
  if (config.handler == nullptr) {
    *error = "no handler";
    return nullptr;
  }
  std::unique_ptr<Server> s(new Server(kernel, config));
  if (!s->pool_.ok() || !s->listener_pool_.ok()) {
    *error = std::string("cannot reserve the heap pool: ") + strerror(errno);
    return nullptr;
  }
  sockaddr_storage addr;
  socklen_t len;
  if (!make_address(config.host, config.port, &addr, &len)) {
    *error = "not a numeric IPv4 or IPv6 address: " + config.host;
    return nullptr;
  }
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + strerror(errno);
    return nullptr;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (config.reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, config.backlog) != 0) {
    *error = "bind/listen " + config.host + ":" + std::to_string(config.port) + ": " + strerror(errno);
    ::close(fd);
    return nullptr;
  }
  sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  s->port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                              : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  s->listen_fd_ = fd;
  Process* p = kernel.new_process(s->listener_pool_);
  if (p == nullptr) {
    *error = "no room for the listener process";
    ::close(fd);
    return nullptr;
  }
  kernel.adopt_fd(fd, p);
  kernel.mark_listener(p);
  s->listening_ = true;
  if (p->start(listener, ListenerAlive(s.get())) == nullptr) {
    *error = "the listener thread does not fit its heap";
    return nullptr;
  }
  Process* sp = kernel.new_process(s->listener_pool_);
  ThreadRef w = sp == nullptr ? nullptr : sp->start(watchdog, s.get());
  if (w == nullptr) {
    *error = "no room for the supervisor process";
    return nullptr;
  }
  s->supervisor_ = kernel.make_supervisor(w);  // (its heap is open: it was just made)
  if (!s->supervisor_) {
    *error = "no room in the kernel's supervisor table";
    return nullptr;
  }
  if (config.metrics != nullptr) {
    if (!kernel.metrics().placed()) {
      *error = "ServerConfig::metrics is set but the kernel has no metric cells (KernelConfig::metrics)";
      return nullptr;
    }
    kernel.metrics().add(config.metrics->heaps_free, static_cast<std::int64_t>(config.pool_size));
  }
  return s;
}

void Server::connection_died(const Death& death) {
  if (death.dropped != 0) {
    log_line("mnv: server on port %u: %lu connection deaths were not reported (the supervisor's queue was full)",
             port_, static_cast<unsigned long>(death.dropped));
    counters_->deaths.fetch_add(death.dropped, std::memory_order_relaxed);
  }
  if (!death) return;
  // A thread that trapped is never resumed nor destroyed, so its ConnectionSlot never ended it:
  // end it here, unless that heap already serves a newer connection (which ended it).
  auto conn = death.note.as<ConnectionTag>();
  if (conn.index < config_.pool_size && conn_gens_[conn.index] == conn.gen && conn_fds_[conn.index] >= 0) {
    connection_ended(conn.index);
  }
  if (config_.metrics != nullptr) kernel_.metrics().add(config_.metrics->closed[ServerMetrics::kFault]);
  std::uint64_t n = counters_->deaths.fetch_add(1, std::memory_order_relaxed) + 1;
  char peer[INET6_ADDRSTRLEN + 16];
  char why[256];
  log_line("mnv: server on port %u: connection %s (fd %d, process %u) died and was reclaimed: %s (%lu deaths so far)",
           port_, format_peer(conn, peer, sizeof peer), conn.fd, death.slot, death.error.describe(why, sizeof why),
           static_cast<unsigned long>(n));
}

void Server::start_connection(int fd, const sockaddr_storage& peer, socklen_t len) {
  const ServerMetrics* m = config_.metrics;
  if (draining_) {  // (the listener is gone; this fd was handed over by another shard)
    counters_->refused.fetch_add(1, std::memory_order_relaxed);
    if (m != nullptr) kernel_.metrics().add(m->refused);
    ::close(fd);
    return;
  }
  Process* p = kernel_.new_process(pool_);
  if (p == nullptr) {
    counters_->refused.fetch_add(1, std::memory_order_relaxed);
    if (m != nullptr) kernel_.metrics().add(m->refused);
    std::int64_t now = monotonic_ns();
    if (now - last_refusal_log_ > 1'000'000'000) {
      log_line("mnv: server on port %u: all %zu connection heaps in use; refusing connections (%lu so far)",
               port_, pool_.capacity(), static_cast<unsigned long>(counters_->refused.load(std::memory_order_relaxed)));
      last_refusal_log_ = now;
    }
    ::close(fd);
    return;
  }
  counters_->accepted.fetch_add(1, std::memory_order_relaxed);
  kernel_.adopt_fd(fd, p);
  std::size_t index = pool_.index_of(&p->heap());
  if (conn_fds_[index] >= 0) connection_ended(index);  // its last connection trapped (connection_died)
  conn_fds_[index] = fd;
  std::uint32_t gen = ++conn_gens_[index];
  counters_->active.fetch_add(1, std::memory_order_relaxed);
  if (m != nullptr) {
    const metrics::ShardCells& c = kernel_.metrics();
    c.add(m->accepted);
    c.add(m->open, 1);
    c.add(m->heaps_free, -1);
  }
  kernel_.supervise(p->kernel_slot(), supervisor_, ChildNote::of(connection_tag(fd, peer, static_cast<std::uint32_t>(index), gen)));
  // (If the frame does not fit, the process is reclaimed with its fd, and the ConnectionSlot
  // argument, never moved into a frame, undoes the two lines above.)
  p->start(connection, ConnectionSlot(this, index), fd, peer, len);
}

void Server::connection_ended(std::size_t index) {
  conn_fds_[index] = -1;
  counters_->active.fetch_sub(1, std::memory_order_relaxed);
  if (const ServerMetrics* m = config_.metrics) {
    const metrics::ShardCells& c = kernel_.metrics();
    c.add(m->open, -1);
    c.add(m->heaps_free, 1);
  }
}

void Server::drain() {
  if (draining_) return;
  draining_ = true;
  // Shut down, not closed: the fds belong to their processes, which close them as they end.
  if (listening_) ::shutdown(listen_fd_, SHUT_RDWR);  // accept fails (EINVAL), the listener ends
  std::size_t ended = 0;
  for (std::size_t i = 0; i < config_.pool_size; ++i) {
    if (conn_fds_[i] >= 0 && ::shutdown(conn_fds_[i], SHUT_RD) == 0) ++ended;
  }
  log_line("mnv: server on port %u: draining: no new connections; input ended on %zu connection(s)", port_, ended);
}

}  // namespace mnv
