// tests/echo_fixture.h — an echo server (or any handler) on a kernel in a background thread,
// and small blocking loopback clients with bounded timeouts, for the integration tests.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "apps/echo/echo_service.h"
#include "net/service.h"
#include "runtime/kernel.h"
#include "runtime/poller.h"

namespace mnv::testing {

// What the integration tests run on: a poller and, for io_uring, whether sockets use completion
// mode (the default; KernelConfig::completion_io) or readiness and readv/writev, and in
// completion mode whether they receive through one receive per message (the default) or a
// multishot receive into the poller's buffers (KernelConfig::recv_multishot).
struct Backend {
  PollerKind kind;
  bool completion_io = true;
  bool recv_multishot = false;
};

inline auto all_backends() {
  return ::testing::Values(Backend{PollerKind::kIoUring, true, false}, Backend{PollerKind::kIoUring, true, true},
                           Backend{PollerKind::kIoUring, false}, Backend{PollerKind::kEpoll},
                           Backend{PollerKind::kPoll});
}

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  std::string name = poller_name(info.param.kind);
  if (info.param.kind == PollerKind::kIoUring && !info.param.completion_io) name += "_readiness";
  if (info.param.kind == PollerKind::kIoUring && info.param.completion_io && info.param.recv_multishot) {
    name += "_multishot";
  }
  return name;
}

// Runs a Server with `config` on its own kernel thread until stop().
class ServerThread {
 public:
  // The kernel's runaway limit (KernelConfig::max_run_ns): a handler that never yields is
  // trapped after this much CPU time.
  static constexpr std::int64_t kMaxRunNs = 200'000'000;
  ServerThread(PollerKind poller, ServerConfig config, IsolationMode isolation = IsolationMode::kOff)
      : ServerThread(Backend{poller}, config, 0, isolation) {}
  // trim_interval_ns: how often idle processes give memory back (0: the kernel's default).
  ServerThread(Backend backend, ServerConfig config, std::int64_t trim_interval_ns = 0,
               IsolationMode isolation = IsolationMode::kOff) {
    std::promise<std::uint16_t> port;
    auto ready = port.get_future();
    thread_ = std::thread([this, backend, config, trim_interval_ns, isolation, &port] {
      KernelConfig kc;
      kc.poller = backend.kind;
      kc.completion_io = backend.completion_io;
      kc.recv_multishot = backend.recv_multishot;
      kc.isolation = isolation;
      if (trim_interval_ns > 0) kc.trim_interval_ns = trim_interval_ns;
      kc.max_fds = 4096;
      kc.max_processes = config.pool_size + 8;
      kc.grace_ns = 100'000'000;
      kc.max_run_ns = kMaxRunNs;
      kernel_ = Kernel::create(kc);
      std::string error;
      server_ = Server::listen(*kernel_, config, &error);
      if (server_ == nullptr) {
        port.set_value(0);
        return;
      }
      kind_ = kernel_->poller_kind();
      completion_io_ = kernel_->completion_io() != nullptr;
      recv_multishot_ = completion_io_ && kernel_->completion_io()->recv_multishot();
      port.set_value(server_->port());
      kernel_->set_hooks(KernelHooks{this, &ServerThread::on_turn, nullptr, nullptr});
      kernel_->run();
    });
    port_ = ready.get();
  }
  ~ServerThread() { stop(); }
  void stop() {
    if (!thread_.joinable()) return;
    if (kernel_ != nullptr) kernel_->request_stop();
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  PollerKind kind() const { return kind_; }
  // Whether its sockets use completion-mode I/O.
  bool completion_io() const { return completion_io_; }
  bool recv_multishot() const { return recv_multishot_; }
  Server* server() const { return server_.get(); }
  // Asks the kernel's thread to drain the server (Server::drain()) at its next turn.
  void drain() {
    drain_requested_.store(true, std::memory_order_release);
    kernel_->poller().wake();
  }
  // Idle processes the server's trim passes have trimmed so far (Kernel::idle_trims()).
  std::uint64_t idle_trims() const { return kernel_->idle_trims(); }
  // Waits (up to 10 s) until that count reaches at least `n`; false if it does not. Woken by
  // the kernel's thread at the turn after each trim (on_turn below), not by polling.
  bool wait_idle_trims(std::uint64_t n) {
    return wait_until([&] { return kernel_->idle_trims() >= n; });
  }
  // Waits (up to 10 s) until `done()` (reading the server's counters: active(), deaths(),
  // idle_trims()) holds; false if it does not. Woken at the turn after any of them changes.
  template <typename Pred>
  bool wait_until(Pred done) {
    std::unique_lock<std::mutex> lock(trims_mu_);
    return trimmed_.wait_for(lock, std::chrono::seconds(10), done);
  }

 private:
  // On the kernel's thread, every turn: tells wait_until() when a trim pass trimmed or the
  // server's active or deaths count changed.
  static void on_turn(void* ctx) {
    auto* self = static_cast<ServerThread*>(ctx);
    if (self->drain_requested_.exchange(false, std::memory_order_acquire)) self->server_->drain();
    Seen now{self->kernel_->idle_trims(), self->server_->deaths(), self->server_->active()};
    if (now == self->seen_) return;
    self->seen_ = now;
    std::lock_guard<std::mutex> lock(self->trims_mu_);  // a waiter is checking or waiting, not between
    self->trimmed_.notify_all();
  }

  std::thread thread_;
  std::mutex trims_mu_;
  std::condition_variable trimmed_;
  struct Seen {
    std::uint64_t trims = 0, deaths = 0;
    long active = 0;
    bool operator==(const Seen&) const = default;
  };
  Seen seen_;  // the kernel's thread only
  std::atomic<bool> drain_requested_{false};
  std::unique_ptr<Kernel> kernel_;
  std::unique_ptr<Server> server_;
  std::uint16_t port_ = 0;
  PollerKind kind_ = PollerKind::kEpoll;
  bool completion_io_ = false;
  bool recv_multishot_ = false;
};

inline ServerConfig echo_config(std::size_t pool = 256) {
  ServerConfig c;
  c.handler = echo::serve;
  c.pool_size = pool;
  c.heap_pages = 8;
  return c;
}

// A blocking client socket with 5 s send/receive timeouts (so a broken server fails the test
// instead of hanging it).
class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool send(const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }
  // Reads exactly n bytes (fewer on EOF/timeout).
  std::string recv_n(std::size_t n) {
    std::string out;
    char buf[65536];
    while (out.size() < n) {
      ssize_t r = ::recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
      if (r <= 0) break;
      out.append(buf, static_cast<std::size_t>(r));
    }
    return out;
  }
  // Reads one line (up to '\n'), or what came before EOF/timeout.
  std::string recv_line() {
    std::string out;
    char c;
    while (::recv(fd_, &c, 1, 0) == 1) {
      out.push_back(c);
      if (c == '\n') break;
    }
    return out;
  }
  // Reads until EOF (or timeout).
  std::string recv_all() {
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t r = ::recv(fd_, buf, sizeof buf, 0);
      if (r <= 0) break;
      out.append(buf, static_cast<std::size_t>(r));
    }
    return out;
  }
  // True if the server closed the connection (EOF) within the timeout.
  bool sees_eof() {
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// `n` connections, opened one after another, each sending "<prefix>K\n" and reading its reply
// "Line 0: <prefix>K\n" before the next opens (so a balancing server sees them one at a time).
// Stops at the first that is not answered as it should be: callers check the size.
inline std::vector<std::unique_ptr<Client>> open_answered(std::uint16_t port, int n, const std::string& prefix = "c") {
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < n; ++i) {
    auto c = std::make_unique<Client>(port);
    std::string line = prefix + std::to_string(i) + "\n";
    if (!c->send(line) || c->recv_line() != "Line 0: " + line) break;
    clients.push_back(std::move(c));
  }
  return clients;
}

// `count` clients, one after another, each sending "<prefix>K\n" on a new connection and
// expecting its echo. A connection reset on the way (hashed to a shard's listener that is going
// away: a dead shard process's outlives it briefly) is made again, as real clients do, until
// `patience_ns` from now. Returns the connections that were reset, or -1 if a client was never
// served in time.
inline int serve_reconnecting(std::uint16_t port, int count, const std::string& prefix,
                              std::int64_t patience_ns = 10'000'000'000) {
  std::int64_t deadline = monotonic_ns() + patience_ns;
  int resets = 0;
  for (int i = 0; i < count; ++i) {
    std::string line = prefix + std::to_string(i) + "\n";
    for (;;) {
      Client c(port);
      if (c.send(line) && c.recv_line() == "Line 0: " + line) break;
      ++resets;
      if (monotonic_ns() >= deadline) return -1;
    }
  }
  return resets;
}

inline std::string kind_name(const ::testing::TestParamInfo<PollerKind>& info) {
  return poller_name(info.param);
}

}  // namespace mnv::testing
